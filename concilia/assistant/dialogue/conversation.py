"""One turn of a conversation: the opening, what holds at any step, the first steps, hand-over."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.assistant import flows, knowledge
from concilia.assistant.dialogue.base import (
    HUMAN,
    NO,
    YES,
    Reply,
    Rules,
    _fold,
    rules,
    understanding_record,
)
from concilia.assistant.dialogue.closing import Closing
from concilia.assistant.dialogue.collecting import Collecting
from concilia.assistant.dialogue.offering import Offering
from concilia.assistant.models import (
    ChatUpload,
    Conversation,
    ConversationStatus,
    HandoverReason,
    TroubleshootingGuide,
)
from concilia.cases.models import Category, Kind
from concilia.cases.queries import active_categories
from concilia.customers.models import PrivacyNotice
from concilia.nlu import UNKNOWN, Money, Understanding, understand
from concilia.nlu.frustration import reasons as frustration_reasons

# A request about the customer's own personal data (a copy, a correction, an erasure): answered
# anywhere with the tracking pages' "My data" page, where the emailed sign-in verifies them.
PRIVACY = "__privacy"
_OWN_DATA = re.compile(
    r"\b(?:gdpr|rgpd|lopdgdd|ccpa|dsar|derechos arco|right to be forgotten|derecho al olvido"
    r"|subject access request|data protection officer|delegado de proteccion de datos"
    r"|(?:delete|erase|remove|copy|access|download|export|correct|rectify)\w*\W+(?:\w+\W+){0,3}"
    r"(?:my|all my) (?:personal )?data"
    r"|(?:borr|elimin|suprim|cancel|copia|acce|descarg|export|correg|corrij|rectific)\w*\W+"
    r"(?:\w+\W+){0,3}(?:mis|todos mis) datos)\b"
)


def asks_about_own_data(text: str) -> bool:
    """Whether a message asks for a copy, a correction or the erasure of the writer's data."""
    return bool(_OWN_DATA.search(_fold(text)))


class Dialogue(Collecting, Offering, Closing):
    """One turn of one conversation. The caller holds the conversation's row lock."""

    def __init__(self, conversation: Conversation):
        self.conv = conversation
        self.state: dict[str, Any] = conversation.state
        self.replies: list[Reply] = []
        self.handover: tuple[str, str] | None = None
        self.create_case = False
        # The nonce of a verification code to email once the turn is saved.
        self.send_code = ""
        # The case the policies are to decide once the turn is saved (see `await_decision`).
        self.decide_case: int | None = None
        self._rules: Rules | None = None
        self._guides: list[TroubleshootingGuide] | None = None

    # -- helpers ---------------------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        if self._rules is None:
            self._rules = rules()
        return self._rules

    def say(
        self, body: str, choices: Sequence[tuple[str, Any]] = (), expects: str = "text"
    ) -> None:
        self.replies.append(Reply(body, choices, expects))

    @property
    def step(self) -> str:
        return self.state.get("step", "")

    def go(self, step: str, **values: Any) -> None:
        self.state["step"] = step
        self.state.update(values)

    @property
    def fields(self) -> dict[str, Any]:
        return self.state.setdefault("fields", {})

    def category(self) -> Category | None:
        code = self.state.get("category")
        return active_categories().get(code) if code else None

    def human_choice(self) -> tuple[str, str]:
        return (HUMAN, _("Talk to a person"))

    # -- the opening -----------------------------------------------------------------------

    def open(self, *, customer_name: str = "", open_cases: Sequence[str] = ()) -> None:
        """The first messages: a greeting (by name, with their open cases, for a customer who
        proved who they are) and the privacy notice, whose consent buttons come last."""
        self.state.update({"step": "consent", "fields": {}})
        if customer_name:
            greeting = _("Hello, %(name)s! I am the complaints assistant.") % {
                "name": customer_name
            }
        else:
            greeting = _("Hello! I am the complaints assistant.")
        self.say(
            greeting
            + " "
            + _(
                "I can help you file a complaint or a request, answer frequent questions, or "
                "pass you to a person at any moment: just ask."
            )
        )
        if open_cases:
            self.state["open_cases"] = list(open_cases)
            self.say(
                _("I see you have open cases: %(references)s.")
                % {"references": ", ".join(open_cases)}
            )
        self.ask_consent()

    def ask_consent(self) -> None:
        notice = PrivacyNotice.objects.current()
        self.state["notice"] = notice.version
        self.say(
            _(
                "Before you tell me anything personal: we use what you write here (your name, "
                "email, order details and your account of the problem) only to handle your "
                "request, we keep it for as long as the law requires, and you can ask to see, "
                "correct or delete it at any time. The full privacy notice (version %(version)s):"
            )
            % {"version": notice.version}
            + "\n\n"
            + notice.body
            + "\n\n"
            + _("Do you accept it?"),
            [("accept", _("I accept")), ("decline", _("I do not accept"))],
            "choice",
        )

    # -- a turn ----------------------------------------------------------------------------

    def turn(
        self,
        *,
        text: str = "",
        choice: str = "",
        upload: ChatUpload | None = None,
        reading: Understanding | None = None,
    ) -> Understanding | None:
        """Handle one customer message; returns what the NLU read in it (None for a button).

        `reading` is the NLU's reading of `text` when the caller already has it (read before the
        conversation was locked, so the lock is not held while the models run).
        """
        if text and reading is None:
            reading = understand(text, language=self.conv.language)
        if reading is not None:
            self._adopt_language(reading)
        with translation.override(self.conv.language):
            wants_person = choice == HUMAN or (
                reading is not None and reading.act == "request_human"
            )
            if self.conv.status == ConversationStatus.CLOSED and wants_person:
                # A person is reachable after the end too (even at the survey).
                self.conv.status = ConversationStatus.ACTIVE
                self.request_handover(HandoverReason.REQUESTED, "")
            elif self.conv.status == ConversationStatus.CLOSED:
                self._after_end(text, choice, reading)
            elif not self._anywhere(text, choice, reading):
                self._step(text, choice, reading, upload)
        return reading

    def _adopt_language(self, reading: Understanding) -> None:
        words = len(reading.text.split())
        if (
            reading.language != self.conv.language
            and reading.language_confidence >= 0.8
            and words >= 3
            and not self.state.get("language_fixed")
        ):
            self.conv.language = reading.language

    def _anywhere(self, text: str, choice: str, reading: Understanding | None) -> bool:
        """What holds at any step of any flow; True when the turn is handled."""
        if choice == HUMAN or (reading is not None and reading.act == "request_human"):
            self.request_handover(HandoverReason.REQUESTED, "")
            return True
        if choice == PRIVACY or (reading is not None and asks_about_own_data(reading.text)):
            self._privacy_request()
            return True
        if reading is None:
            return False
        if self._frustrated(reading):
            return True
        if reading.act == "cancel" and self.step not in ("survey", "survey_comment"):
            self.say(
                _(
                    "All right, I have stopped here; nothing more will be done with this "
                    "conversation. You can write again whenever you want."
                )
            )
            self.go("ended")
            self.conv.status = ConversationStatus.CLOSED
            return True
        if self.step in ("slot", "confirm", "change_field") and self._correct(reading):
            return True
        if reading.act == "question" and self.step not in ("problem", "kb_only"):
            article = knowledge.find_answer(text)
            if article is not None:
                self._answer(article)
                self._ask_again()
                return True
        return False

    def _privacy_request(self) -> None:
        url = settings.BASE_URL.rstrip("/") + reverse("intake:my-data")
        self.say(
            _(
                "You can get a copy of your personal data, ask us to correct it or to erase it "
                "on the “My data” page of your tracking pages: %(url)s. You sign in there with "
                "a link we email you, which is how we check that it is you. We answer within "
                "one month."
            )
            % {"url": url}
        )
        self._ask_again()

    def _frustrated(self, reading: Understanding) -> bool:
        level = reading.frustration
        rules = self.rules
        if level >= rules.frustration_warning:
            # What showed it, in the customer's words, for the person who takes over.
            self.state["frustration_signs"] = [
                [reason.signal, reason.evidence[:80]]
                for reason in frustration_reasons(reading.text, reading.language)[:5]
            ]
        if level >= rules.frustration_threshold:
            self.request_handover(HandoverReason.FRUSTRATION, f"{level:.2f}")
            return True
        if level >= rules.frustration_warning:
            hits = self.state.get("frustration_hits", 0) + 1
            self.state["frustration_hits"] = hits
            if hits >= rules.frustration_repeats:
                self.request_handover(HandoverReason.FRUSTRATION, _("repeated"))
                return True
        return False

    # -- steps -----------------------------------------------------------------------------

    def _step(
        self, text: str, choice: str, reading: Understanding | None, upload: ChatUpload | None
    ) -> None:
        if upload is not None and not self._expects_file():
            # Evidence sent before it is asked for is kept: it goes with the case.
            self.say(
                _("I have kept the file %(name)s; it will go with your case.")
                % {"name": upload.original_name}
            )
            if "consent" in self.state:
                self._ask_again()
            else:
                self.ask_consent()
            return
        handler = getattr(self, f"_on_{self.step}", None)
        if handler is None:
            self.go("problem")
            handler = self._on_problem
        handler(text=text, choice=choice, reading=reading, upload=upload)

    def _expects_file(self) -> bool:
        if self.step != "slot" or self.category() is None:
            return False
        slot = flows.flow_for(self.category()).slot(self.state.get("slot", ""))
        return slot is not None and slot.expects == "file"

    def _yes_no(self, choice: str, reading: Understanding | None) -> str:
        if choice in (YES, "accept"):
            return YES
        if choice in (NO, "decline"):
            return NO
        if reading is not None and reading.act in ("affirm", "thank"):
            return YES
        if reading is not None and reading.act in ("deny",):
            return NO
        return ""

    def _on_consent(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        answer = self._yes_no(choice, reading)
        if answer == YES:
            self.state["consent"] = {
                "notice": self.state.get("notice"),
                "at": timezone.now().isoformat(),
            }
            self.conv.consent_declined_at = None
            pending = self.state.pop("pending_handover", None)
            if pending:
                self.request_handover(pending["reason"], pending.get("detail", ""))
                return
            self.say(_("Thank you. Tell me, in your own words, what happened."))
            self.go("problem")
        elif answer == NO:
            self.conv.consent_declined_at = timezone.now()
            self.state.pop("pending_handover", None)
            self.say(
                _(
                    "Understood: I will not ask for or keep any personal data. I can still answer "
                    "general questions, such as opening hours, the return window or how refunds "
                    "work. What would you like to know?"
                ),
                [("accept", _("Accept the notice after all")), ("end", _("End the chat"))],
            )
            self.go("kb_only")
        else:
            self.say(
                _("Please tell me whether you accept the privacy notice."),
                [("accept", _("I accept")), ("decline", _("I do not accept"))],
                "choice",
            )

    def _on_kb_only(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        if choice == "accept":
            self.go("consent")
            self._on_consent(text="", choice="accept", reading=None)
            return
        if choice == "end" or (reading is not None and reading.act in ("thank", "deny")):
            self._end_politely()
            return
        article = knowledge.find_answer(text) if text else None
        if article is not None:
            self._answer(article)
            self.say(_("Anything else?"), [("end", _("No, thank you"))])
            return
        self.state.setdefault("unanswered", []).append(text[:300])
        knowledge.report_unanswered(conversation=self.conv, text=text, reason=knowledge.NO_ANSWER)
        self.say(
            _(
                "I do not have an answer to that without looking at your case, and I cannot "
                "look at it without your consent. You can accept the privacy notice, ask me "
                "something else, or end the chat."
            ),
            [("accept", _("Accept the notice")), ("end", _("End the chat"))],
        )

    def _end_politely(self) -> None:
        self.say(_("Thank you for writing to us. Have a good day!"), expects="none")
        self.go("ended")
        self.conv.status = ConversationStatus.CLOSED

    def _on_problem(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        if reading is None or not text.strip():
            self.say(_("Tell me, in your own words, what happened."))
            return
        if reading.act in ("greet", "thank") and len(text.split()) <= 3:
            self.say(_("Hello! Tell me, in your own words, what happened."))
            return
        if reading.act == "question" or reading.kind.label == Kind.QUESTION:
            article = knowledge.find_answer(text)
            if article is not None:
                self._answer(article)
                self.say(
                    _("Did that answer your question?"),
                    [(YES, _("Yes, thanks")), (NO, _("No, I have a problem to report"))],
                    "choice",
                )
                self.go("kb_feedback", kb_article=article.pk)
                return
            self.state.setdefault("unanswered", []).append(text[:300])
            knowledge.report_unanswered(
                conversation=self.conv, text=text, reason=knowledge.NO_ANSWER
            )
            self._describe(text, reading, reported=True)
            return
        self._describe(text, reading)

    def _describe(self, text: str, reading: Understanding, *, reported: bool = False) -> None:
        previous = self.state.get("description", "")
        self.state["description"] = f"{previous}\n{text}".strip() if previous else text
        self.state["understanding"] = understanding_record(reading)
        if reading.kind.label and reading.kind.label != UNKNOWN:
            self.state["kind"] = reading.kind.label
        self._prefill(reading)
        category = reading.category
        confident = (
            category.label != UNKNOWN
            and category.label in active_categories()
            and category.confidence >= self.rules.confidence_threshold
        )
        if confident:
            self.state["low_confidence"] = 0
            self._set_category(category.label, category.confidence)
            return
        if not reported:
            knowledge.report_unanswered(
                conversation=self.conv, text=text, reason=knowledge.NOT_UNDERSTOOD
            )
        misses = self.state.get("low_confidence", 0) + 1
        self.state["low_confidence"] = misses
        if misses >= self.rules.low_confidence_turns:
            self.request_handover(HandoverReason.NOT_UNDERSTOOD, f"{category.confidence:.2f}")
            return
        self._ask_category(reading)

    def _ask_category(self, reading: Understanding | None) -> None:
        categories = active_categories()
        ranked: list[str] = []
        if reading is not None:
            for label in (reading.category.best, *(a for a, _ in reading.category.alternatives)):
                if label in categories and label not in ranked:
                    ranked.append(label)
        ranked += [code for code in categories if code not in ranked]
        self.say(
            _("I am not sure I understood. Which of these is closest to your problem?"),
            [(code, categories[code].name) for code in ranked] + [self.human_choice()],
            "choice",
        )
        self.go("choose_category")

    def _on_choose_category(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        if choice in active_categories():
            self.state["low_confidence"] = 0
            self._set_category(choice, 1.0)
            return
        if reading is not None:
            self._describe(text, reading)
        else:
            self._ask_category(None)

    def _set_category(self, code: str, confidence: float) -> None:
        category = active_categories()[code]
        self.state["category"] = code
        self.state["category_confidence"] = round(confidence, 3)
        self.conv.category_code = code
        self.say(_("I understand: %(category)s.") % {"category": category.name})
        self.apply_prefill()
        self._next()

    def _on_kb_feedback(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        answer = self._yes_no(choice, reading)
        article_id = self.state.pop("kb_article", None)
        if article_id:
            knowledge.count_feedback(article_id, answer == YES)
        if answer == YES:
            self.conv.resolved_by_assistant = True
            self._ask_survey(_("I am glad it helped."))
        else:
            self.say(_("I am sorry. Tell me, in your own words, what happened."))
            self.go("problem")

    # -- hand-over -------------------------------------------------------------------------

    def request_handover(self, reason: str, detail: str) -> None:
        """Pass the conversation to a person, first asking what that needs (consent, email)."""
        if self.conv.status == ConversationStatus.HANDED_OVER:
            self.say(_("A person already has your conversation and will write here."))
            return
        if "consent" not in self.state:
            self.state["pending_handover"] = {"reason": reason, "detail": detail}
            self.say(
                _(
                    "Of course, I will pass you to a person. For that I need to keep this "
                    "conversation, so please accept the privacy notice first."
                )
            )
            self.ask_consent()
            self.go("consent")
            return
        if not self.conv.customer_id and not (self.state.get("email") and self.state.get("name")):
            self.state["pending_handover"] = {"reason": reason, "detail": detail}
            self.say(_("I will pass you to a person. So that they can reach you:"))
            if not self.state.get("category"):
                self.state["category"] = self._best_category()
            self._next()
            return
        if not self.state.get("category"):
            self.state["category"] = self._best_category()
        self.handover = (reason, detail)

    def _best_category(self) -> str:
        understood = self.state.get("understanding") or {}
        best = understood.get("category_best", "")
        return best if best in active_categories() else "other"

    def _prefill(self, reading: Understanding) -> None:
        """Data given in the description is not asked again (it is shown in the summary)."""
        order = reading.first("order_number")
        if order is not None and "order_number" not in self.fields:
            self.state["prefill_order"] = str(order.value)
        day = reading.first("date")
        if day is not None and isinstance(day.value, dt.date) and day.value <= timezone.localdate():
            self.state["prefill_date"] = day.value.isoformat()
        money = reading.first("amount")
        if money is not None and isinstance(money.value, Money) and money.value.amount > 0:
            self.state["prefill_amount"] = str(money.value.amount.quantize(Decimal("0.01")))
            self.state["currency"] = money.value.currency
        email = reading.first("email")
        if email is not None and not self.state.get("email") and not self.conv.customer_id:
            self.state["email"] = str(email.value)

    def apply_prefill(self) -> None:
        """Once the category is known, its slots take what the description already said."""
        category = self.category()
        if category is None:
            return
        flow = flows.flow_for(category)
        # Data minimisation: what an earlier category collected and this one does not ask goes.
        for field in ("order_number", "purchase_date", "amount"):
            if flow.slot(field) is None:
                self.fields.pop(field, None)
        for key, field in (
            ("prefill_order", "order_number"),
            ("prefill_date", "purchase_date"),
            ("prefill_amount", "amount"),
        ):
            value = self.state.pop(key, None)
            if value and flow.slot(field) is not None and field not in self.fields:
                self.fields[field] = value
                if field == "order_number":
                    self.state["order_pending_check"] = True
