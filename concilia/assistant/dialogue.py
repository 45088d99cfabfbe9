"""The dialogue: one customer turn in, the assistant's answers out, over a conversation's state.

A turn is read (the NLU), checked against what holds at any point of any flow (asking for a
person, frustration, a correction, a question for the knowledge base, cancelling), and then
handled by the current step: consent, the problem, the category, who the customer is, the slots
of the category's flow, the summary, troubleshooting and a technician's visit, the survey.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from concilia.assistant import flows, knowledge, verification, visits
from concilia.assistant.models import (
    ChatUpload,
    Conversation,
    ConversationStatus,
    HandoverReason,
    HandoverRules,
    TroubleshootingGuide,
)
from concilia.cases.models import Case, Category, Kind
from concilia.cases.queries import active_categories
from concilia.core.memo import remember_for
from concilia.core.ports import order_lookup
from concilia.customers.models import Customer, PrivacyNotice
from concilia.nlu import UNKNOWN, Money, Understanding, understand
from concilia.nlu.frustration import reasons as frustration_reasons

HUMAN = "__human"
SKIP = "__skip"
YES, NO = "yes", "no"
NEW_CASE = "__new"
_ORDER_TOKEN = re.compile(r"^#?\s*([A-Za-z0-9][A-Za-z0-9\-/]{2,29})$")
_BARE_AMOUNT = re.compile(r"^\s*(\d{1,9}(?:[.,]\d{1,2})?)\s*$")


class Reply:
    """What the assistant says in one message: text, buttons, and what it then waits for."""

    def __init__(self, body: str, choices: Sequence[tuple[str, str]] = (), expects: str = "text"):
        self.body = body
        self.choices = [{"value": value, "label": str(label)} for value, label in choices]
        self.expects = expects


@dataclass(frozen=True)
class Rules:
    """The hand-over rules in force, as read from the admin's one row."""

    frustration_threshold: float
    frustration_warning: float
    frustration_repeats: int
    confidence_threshold: float
    low_confidence_turns: int
    amount_limit: Decimal | None
    person_categories: frozenset[int]


@remember_for(seconds=10)
def rules() -> Rules:
    found = HandoverRules.objects.first() or HandoverRules()
    return Rules(
        frustration_threshold=found.frustration_threshold,
        frustration_warning=found.frustration_warning,
        frustration_repeats=found.frustration_repeats,
        confidence_threshold=found.confidence_threshold,
        low_confidence_turns=found.low_confidence_turns,
        amount_limit=found.amount_limit,
        person_categories=frozenset(
            found.person_categories.values_list("pk", flat=True) if found.pk else ()
        ),
    )


class Dialogue:
    """One turn of one conversation. The caller holds the conversation's row lock."""

    def __init__(self, conversation: Conversation):
        self.conv = conversation
        self.state: dict[str, Any] = conversation.state
        self.replies: list[Reply] = []
        self.handover: tuple[str, str] | None = None
        self.create_case = False
        # The nonce of a verification code to email once the turn is saved.
        self.send_code = ""
        self._rules: Rules | None = None

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

    def open(self, *, customer_name: str = "", open_cases: Sequence[Case] = ()) -> None:
        """The first messages: a greeting and the privacy notice, with its consent buttons."""
        notice = PrivacyNotice.objects.current()
        self.state.update({"step": "consent", "notice": notice.version, "fields": {}})
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
        self._describe(text, reading)

    def _describe(self, text: str, reading: Understanding) -> None:
        previous = self.state.get("description", "")
        self.state["description"] = f"{previous}\n{text}".strip() if previous else text
        self.state["understanding"] = _summary(reading)
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

    # -- who the customer is ---------------------------------------------------------------

    def _on_email(self, *, text: str, reading: Understanding | None, **rest: Any) -> None:
        candidate = ""
        if reading is not None and reading.first("email") is not None:
            candidate = str(reading.first("email").value)  # type: ignore[union-attr]
        elif text.strip():
            candidate = text.strip().lower()
        try:
            validate_email(candidate)
        except ValidationError:
            self.say(
                _("That does not look like an email address. Which email can we write to?"),
                expects="email",
            )
            return
        self.state["email"] = candidate
        known = (
            Customer.objects.filter(email=candidate, cases__isnull=False).distinct().first()
            if not self.conv.customer_id
            else None
        )
        if known is not None:
            challenge = verification.new_challenge(candidate, known.pk)
            self.state["challenge"] = challenge
            self.send_code = str(challenge["nonce"])
            self.say(
                _(
                    "You have written to us before. So that I can see your cases, I have sent a "
                    "six-digit code to %(email)s: type it here, or skip this step."
                )
                % {"email": candidate},
                [(SKIP, _("Skip"))],
                "code",
            )
            self.go("verify_code")
            return
        self._next()

    def _on_verify_code(self, *, text: str, choice: str, **rest: Any) -> None:
        challenge = self.state.get("challenge") or {}
        if choice == SKIP or not challenge:
            self.state.pop("challenge", None)
            self._next()
            return
        if verification.check(challenge, text):
            customer = Customer.objects.get(pk=challenge["customer"])
            self.state.pop("challenge")
            self.conv.customer = customer
            self.conv.verified = True
            self.state["name"] = customer.name
            cases = Case.objects.open().for_customer(customer).order_by("-created_at")[:3]
            self.state["open_cases"] = [case.reference for case in cases]
            self.say(_("Thank you, %(name)s. Welcome back.") % {"name": customer.name})
            self._next()
            return
        challenge["attempts"] = int(challenge.get("attempts", 0)) + 1
        if challenge["attempts"] >= verification.MAX_ATTEMPTS:
            self.state.pop("challenge")
            self.say(_("That code is not right. Let us go on without it."))
            self._next()
            return
        self.say(
            _("That code is not right, or it has expired. Please check the email and try again."),
            [(SKIP, _("Skip"))],
            "code",
        )

    def _on_name(self, *, text: str, **rest: Any) -> None:
        name = " ".join(text.split())
        if not 2 <= len(name) <= 200 or "@" in name or any(ch.isdigit() for ch in name):
            self.say(_("What name should we address you by?"), expects="name")
            return
        self.state["name"] = name
        self._next()

    def _on_existing_case(self, *, choice: str, text: str, reading: Any, **rest: Any) -> None:
        references = self.state.get("open_cases", [])
        chosen = choice if choice in references else ""
        if not chosen and text:
            upper = text.upper()
            chosen = next((ref for ref in references if ref in upper), "")
        if chosen:
            self.state["existing_case"] = chosen
            self.create_case = True
            return
        self.state["asked_existing"] = True
        self._next()

    # -- the flow's slots ------------------------------------------------------------------

    def _next(self) -> None:
        """Ask for the next thing missing, or show the summary when nothing is."""
        if not self.state.get("category"):
            self.say(_("Tell me, in your own words, what happened."))
            self.go("problem")
            return
        if not self.conv.customer_id and not self.state.get("email"):
            self.say(
                _("Which email address can we write to about this?"),
                expects="email",
            )
            self.go("email")
            return
        if not self.conv.customer_id and not self.state.get("name"):
            self.say(_("And what is your name?"), expects="name")
            self.go("name")
            return
        if self.state.get("pending_handover"):
            pending = self.state.pop("pending_handover")
            self.request_handover(pending["reason"], pending.get("detail", ""))
            return
        if (
            self.conv.verified
            and self.state.get("open_cases")
            and not self.state.get("asked_existing")
        ):
            references = self.state["open_cases"]
            self.say(
                _("Is this about one of your open cases?"),
                [(ref, _("Yes, %(reference)s") % {"reference": ref}) for ref in references]
                + [(NEW_CASE, _("No, something new"))],
                "choice",
            )
            self.go("existing_case")
            return
        check_order = self.state.pop("order_pending_check", False)
        if (
            check_order
            and "order_number" in self.fields
            and not self._check_order(self.fields["order_number"])
        ):
            self.go("slot", slot="order_number")
            return
        flow = flows.flow_for(self.category())
        for slot in flow.slots:
            if slot.name in self.fields or slot.name in self.state.get("skipped", []):
                continue
            if not slot.applies(self.fields):
                continue
            self._ask_slot(slot)
            return
        if self.state.get("category") == "technical_problem" and not self.state.get("tech_done"):
            self._start_troubleshooting()
            return
        self._show_summary()

    def _ask_slot(self, slot: flows.Slot) -> None:
        choices: list[tuple[str, Any]] = list(slot.choices)
        expects = slot.expects
        if slot.expects == "product":
            choices = [
                (guide.code, guide.product_in(self.conv.language))
                for guide in TroubleshootingGuide.objects.filter(active=True)
            ] + [("other", _("Another product"))]
            expects = "choice"
        if not slot.required:
            choices.append((SKIP, _("Skip")))
        self.say(str(slot.question), choices, expects if expects != "order" else "text")
        self.go("slot", slot=slot.name)

    def _on_slot(
        self,
        *,
        text: str,
        choice: str,
        reading: Understanding | None,
        upload: ChatUpload | None,
        **rest: Any,
    ) -> None:
        flow = flows.flow_for(self.category())
        slot = flow.slot(self.state.get("slot", ""))
        if slot is None:
            self._next()
            return
        if choice == SKIP and not slot.required:
            self.state.setdefault("skipped", []).append(slot.name)
            self._after_slot()
            return
        value = self._read_slot(slot, text, choice, reading, upload)
        if value is None:
            return
        self.fields[slot.name] = value
        if slot.name in self.state.get("skipped", []):
            self.state["skipped"].remove(slot.name)
        if slot.name == "order_number" and not self._check_order(value):
            return
        self._after_slot()

    def _after_slot(self) -> None:
        if self.state.pop("return_to_confirm", False):
            self._show_summary()
        else:
            self._next()

    def _read_slot(
        self,
        slot: flows.Slot,
        text: str,
        choice: str,
        reading: Understanding | None,
        upload: ChatUpload | None,
    ) -> Any:
        """The slot's value from this message, or None after asking again."""
        expects = slot.expects
        if expects == "file":
            if upload is not None:
                upload.purpose = slot.name
                upload.save(update_fields=["purpose"])
                return [upload.pk]
            self.say(
                _("Please attach the file with the paper-clip button, or skip this step."),
                [(SKIP, _("Skip"))] if not slot.required else [],
                "file",
            )
            return None
        if expects in ("choice", "product"):
            options = (
                {
                    g.code: g.product_in(self.conv.language)
                    for g in TroubleshootingGuide.objects.filter(active=True)
                }
                | {"other": _("Another product")}
                if expects == "product"
                else {key: str(label) for key, label in slot.choices}
            )
            if choice in options:
                return choice
            found = _match_option(
                text, options, self._guide_keywords() if expects == "product" else {}
            )
            if found:
                return found
            self.say(_("Please choose one of the options."), list(options.items()), "choice")
            return None
        if reading is None:
            self._ask_slot(slot)
            return None
        if expects == "order":
            entity = reading.first("order_number")
            if entity is not None:
                return str(entity.value)
            token = _ORDER_TOKEN.match(text.strip())
            if token and any(ch.isdigit() for ch in token.group(1)):
                return token.group(1)
            self.say(
                _("I could not find an order number there. It looks like 4471 or A-12345."),
                expects="text",
            )
            return None
        if expects == "date":
            entity = reading.first("date")
            day = entity.value if entity is not None else _iso_date(text)
            if not isinstance(day, dt.date):
                self.say(
                    _("I did not get the date. You can write it like 12/03/2026 or “yesterday”."),
                    expects="text",
                )
                return None
            if day > timezone.localdate():
                self.say(_("That date is in the future. When was it?"), expects="text")
                return None
            return day.isoformat()
        if expects == "amount":
            money = _money(reading, text)
            if money is None or money.amount <= 0 or money.amount >= Decimal("1e10"):
                self.say(_("I did not get the amount. For example: 49.90 €."), expects="text")
                return None
            self.state["currency"] = money.currency
            return str(money.amount.quantize(Decimal("0.01")))
        cleaned = text.strip()
        if not cleaned:
            self._ask_slot(slot)
            return None
        return cleaned[:2000]

    def _guide_keywords(self) -> dict[str, str]:
        return {
            guide.code: guide.keywords for guide in TroubleshootingGuide.objects.filter(active=True)
        }

    def _check_order(self, number: str) -> bool:
        """Look the order up; True to go on (found, or accepted as written after two misses)."""
        email = self.state.get("email") or (self.conv.customer.email if self.conv.customer else "")
        order = order_lookup().find_order(number=number, email=email)
        if order is None:
            misses = self.state.get("order_misses", 0) + 1
            self.state["order_misses"] = misses
            if misses < 2:
                del self.fields["order_number"]
                self.say(
                    _("I cannot find order %(number)s with your email. Could you check the number?")
                    % {"number": number},
                    expects="text",
                )
                return False
            self.say(
                _(
                    "I still cannot find it; I will keep the number as you wrote it and a person will check it."
                )
            )
            self.state["order"] = None
            return True
        facts: dict[str, Any] = {
            "number": order.number,
            "placed_on": order.placed_on.isoformat(),
            "total": str(order.total),
            "currency": order.currency,
            "items": [item.name for item in order.items],
        }
        lines = [
            _("I found order %(number)s of %(date)s: %(items)s, %(total)s %(currency)s.")
            % {
                "number": order.number,
                "date": formats.date_format(order.placed_on, "SHORT_DATE_FORMAT"),
                "items": ", ".join(item.name for item in order.items),
                "total": formats.number_format(order.total, 2),
                "currency": order.currency,
            }
        ]
        shipment = order.shipment
        if shipment is not None:
            facts["shipment"] = {
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "status": shipment.status,
                "promised_on": shipment.promised_on.isoformat() if shipment.promised_on else None,
                "delivered_on": shipment.delivered_on.isoformat()
                if shipment.delivered_on
                else None,
            }
            facts["days_late"] = order.days_late
            lines.append(
                _("Shipment with %(carrier)s (tracking %(tracking)s): %(status)s.")
                % {
                    "carrier": shipment.carrier,
                    "tracking": shipment.tracking_number,
                    "status": shipment_status(shipment.status),
                }
            )
            if shipment.promised_on and order.days_late:
                lines.append(
                    _("It was promised for %(date)s: %(days)s days late.")
                    % {
                        "date": formats.date_format(shipment.promised_on, "SHORT_DATE_FORMAT"),
                        "days": order.days_late,
                    }
                )
        self.state["order"] = facts
        if "purchase_date" not in self.fields and self._needs("purchase_date"):
            self.fields["purchase_date"] = order.placed_on.isoformat()
        self.say(" ".join(str(line) for line in lines))
        return True

    def _needs(self, field: str) -> bool:
        flow = flows.flow_for(self.category())
        return flow.slot(field) is not None

    # -- corrections, questions ------------------------------------------------------------

    def _correct(self, reading: Understanding) -> bool:
        """“No, the order is 4471”: change a field already given, then go on where we were."""
        if reading.act not in ("correct", "deny") and self.step != "change_field":
            return False
        flow = flows.flow_for(self.category())
        changed: list[str] = []
        for kind, field in (("order_number", "order_number"), ("date", "purchase_date")):
            entity = reading.first(kind)  # type: ignore[arg-type]
            if entity is None or flow.slot(field) is None:
                continue
            current_slot = self.state.get("slot") if self.step == "slot" else None
            if field == current_slot:
                continue
            value = (
                entity.value.isoformat() if isinstance(entity.value, dt.date) else str(entity.value)
            )
            if self.fields.get(field) != value:
                self.fields[field] = value
                changed.append(field)
        money = reading.first("amount")
        if (
            money is not None
            and flow.slot("amount") is not None
            and self.state.get("slot") != "amount"
        ):
            amount = money.value
            if isinstance(amount, Money) and amount.amount > 0:
                self.fields["amount"] = str(amount.amount.quantize(Decimal("0.01")))
                self.state["currency"] = amount.currency
                changed.append("amount")
        email = reading.first("email")
        if email is not None and not self.conv.customer_id:
            self.state["email"] = str(email.value)
            changed.append("email")
        if not changed:
            return False
        labels = []
        for field in changed:
            slot = flow.slot(field)
            label = str(slot.label) if slot is not None else _("Email")
            labels.append(f"{label}: {self._display(field)}")
        self.say(_("Corrected. %(changes)s.") % {"changes": "; ".join(labels)})
        if "order_number" in changed:
            self.state["order_misses"] = 0
            if not self._check_order(self.fields["order_number"]):
                self.go("slot", slot="order_number")
                return True
        if self.step in ("confirm", "change_field"):
            self._show_summary()
        else:
            self._ask_again()
        return True

    def _answer(self, article: Any) -> None:
        knowledge.count_shown(article)
        self.say(article.answer_in(self.conv.language), expects="rating")
        self.state["last_article"] = article.pk

    def _ask_again(self) -> None:
        """Repeat the question the conversation is waiting on."""
        step = self.step
        if step == "slot":
            slot = flows.flow_for(self.category()).slot(self.state.get("slot", ""))
            if slot is not None:
                self._ask_slot(slot)
                return
        if step == "email":
            self.say(_("Which email address can we write to about this?"), expects="email")
        elif step == "name":
            self.say(_("And what is your name?"), expects="name")
        elif step == "confirm":
            self._show_summary()
        elif step == "troubleshoot":
            self._show_troubleshooting_step()
        elif step == "book_visit":
            self._offer_visits()
        elif step == "consent":
            self.ask_consent()
        else:
            self._next()

    # -- the summary -----------------------------------------------------------------------

    def _display(self, field: str) -> str:
        value = self.fields.get(field, self.state.get(field))
        if value is None:
            return ""
        if field == "purchase_date" or field == "incident_date":
            return formats.date_format(dt.date.fromisoformat(value), "SHORT_DATE_FORMAT")
        if field == "amount":
            return f"{formats.number_format(Decimal(value), 2)} {self.state.get('currency', 'EUR')}"
        slot = flows.flow_for(self.category()).slot(field) if self.category() else None
        if slot is not None and slot.expects == "file":
            return _("%(count)s file(s)") % {"count": len(value)}
        if slot is not None and slot.choices:
            return flows.choice_label(slot.choices, value)
        if slot is not None and slot.expects == "product":
            guide = TroubleshootingGuide.objects.filter(code=value).first()
            return guide.product_in(self.conv.language) if guide else _("Another product")
        return str(value)

    def summary_lines(self) -> list[str]:
        category = self.category()
        lines = [
            _("Category: %(category)s") % {"category": category.name if category else "-"},
            _("What happened: %(text)s") % {"text": _shorten(self.state.get("description", ""))},
        ]
        email = self.state.get("email") or (self.conv.customer.email if self.conv.customer else "")
        if email:
            lines.append(_("Email: %(email)s") % {"email": email})
        if self.state.get("name"):
            lines.append(_("Name: %(name)s") % {"name": self.state["name"]})
        if category is not None:
            for slot in flows.flow_for(category).slots:
                if slot.name in self.fields and slot.applies(self.fields):
                    lines.append(f"{slot.label}: {self._display(slot.name)}")
        visit = self.state.get("visit")
        if visit:
            lines.append(_("Technician visit: %(when)s") % {"when": visits.describe(visit)})
        return lines

    def _show_summary(self) -> None:
        self.say(
            _("This is what I have:")
            + "\n"
            + "\n".join(f"• {line}" for line in self.summary_lines())
            + "\n"
            + _("Is it correct?"),
            [(YES, _("Yes, send it")), (NO, _("Change something"))],
            "choice",
        )
        self.go("confirm")

    def _on_confirm(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        if choice.startswith("field:"):
            self._change_field(choice.removeprefix("field:"))
            return
        answer = self._yes_no(choice, reading)
        if answer == YES:
            self.create_case = True
            return
        category = self.category()
        options = (
            [
                (f"field:{slot.name}", slot.label)
                for slot in flows.flow_for(category).slots
                if slot.applies(self.fields) and slot.expects != "file"
            ]
            if category
            else []
        )
        self.say(
            _("What should I change? Choose it, or write it, for example “the order is 4471”."),
            [
                *options,
                ("field:category", _("Category")),
                ("field:description", _("What happened")),
            ],
            "choice",
        )
        self.go("change_field")

    def _on_change_field(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        if choice.startswith("field:"):
            self._change_field(choice.removeprefix("field:"))
            return
        if choice == YES:
            self.create_case = True
            return
        self.say(
            _("Choose what to change, or write it, for example “the order is 4471”."),
            [(YES, _("Nothing, send it"))],
            "choice",
        )

    def _change_field(self, name: str) -> None:
        if name == "category":
            self.state.pop("category", None)
            self.state["fields"] = {
                k: v
                for k, v in self.fields.items()
                if k in ("order_number", "purchase_date", "amount")
            }
            self._ask_category(None)
            return
        if name == "description":
            self.state["description"] = ""
            self.say(_("Tell me again, in your own words, what happened."))
            self.go("redescribe")
            return
        slot = flows.flow_for(self.category()).slot(name)
        if slot is None:
            self._show_summary()
            return
        self.fields.pop(name, None)
        self.state["return_to_confirm"] = True
        self._ask_slot(slot)

    def _on_redescribe(self, *, text: str, reading: Understanding | None, **rest: Any) -> None:
        if not text.strip():
            self.say(_("Tell me again, in your own words, what happened."))
            return
        self.state["description"] = text
        self._show_summary()

    # -- technical problems ----------------------------------------------------------------

    def _start_troubleshooting(self) -> None:
        guide = TroubleshootingGuide.objects.filter(
            code=self.fields.get("product"), active=True
        ).first()
        if guide is None or not guide.steps_in(self.conv.language):
            self.state["tech_done"] = True
            self._offer_visits()
            return
        self.state.update({"guide": guide.code, "guide_step": 0, "tried": []})
        self.say(_("Let us try a few checks together; they solve most problems."))
        self.go("troubleshoot")
        self._show_troubleshooting_step()

    def _guide_steps(self) -> list[str]:
        guide = TroubleshootingGuide.objects.filter(code=self.state.get("guide")).first()
        return guide.steps_in(self.conv.language) if guide else []

    def _show_troubleshooting_step(self) -> None:
        steps = self._guide_steps()
        index = self.state.get("guide_step", 0)
        self.say(
            _("Step %(number)s of %(total)s: %(step)s\nDid that solve the problem?")
            % {"number": index + 1, "total": len(steps), "step": steps[index]},
            [(YES, _("Yes, solved")), (NO, _("No"))],
            "choice",
        )

    def _on_troubleshoot(self, *, choice: str, reading: Understanding | None, **rest: Any) -> None:
        answer = self._yes_no(choice, reading)
        steps = self._guide_steps()
        index = self.state.get("guide_step", 0)
        if answer == YES:
            self.conv.resolved_by_assistant = True
            self.state["tech_done"] = True
            self._ask_survey(_("Great, I am glad it works again."))
            return
        if answer != NO:
            self._show_troubleshooting_step()
            return
        self.state.setdefault("tried", []).append(steps[index] if index < len(steps) else "")
        if index + 1 < len(steps):
            self.state["guide_step"] = index + 1
            self._show_troubleshooting_step()
            return
        self.state["tech_done"] = True
        self.say(_("I am sorry it still does not work. A technician will have to look at it."))
        self._offer_visits()

    def _offer_visits(self) -> None:
        offered = visits.free_slots(limit=4)
        self.state["offered_visits"] = [slot.key for slot in offered]
        self.say(
            _("When can the technician come? These are the next free times:"),
            [(slot.key, visits.describe(slot.as_state())) for slot in offered]
            + [("none", _("None of these suit me"))],
            "choice",
        )
        self.go("book_visit")

    def _on_book_visit(self, *, choice: str, **rest: Any) -> None:
        if choice == "none":
            self.state["visit"] = None
            self.state["visit_note"] = "none_suit"
            self.say(_("No problem: a person will call you to find a time."))
            self._show_summary()
            return
        chosen = (
            visits.slot_from_key(choice) if choice in self.state.get("offered_visits", []) else None
        )
        if chosen is None or not visits.is_free(chosen):
            self._offer_visits()
            return
        self.state["visit"] = chosen.as_state()
        self._show_summary()

    # -- after the case --------------------------------------------------------------------

    def _ask_survey(self, lead: str = "") -> None:
        question = _(
            "How satisfied are you with this conversation, from 1 (not at all) to 5 (very)?"
        )
        self.say(
            f"{lead} {question}".strip(),
            [(str(n), str(n)) for n in range(1, 6)],
            "choice",
        )
        self.go("survey")

    def _on_survey(self, *, text: str, choice: str, **rest: Any) -> None:
        score = choice or text.strip()
        if score not in {"1", "2", "3", "4", "5"}:
            self.say(
                _("Please choose a number from 1 to 5."),
                [(str(n), str(n)) for n in range(1, 6)],
                "choice",
            )
            return
        self.conv.csat_score = int(score)
        self.conv.csat_at = timezone.now()
        self.say(
            _("Thank you! Would you like to tell us anything else about it? (optional)"),
            [(SKIP, _("No, thanks"))],
        )
        self.go("survey_comment")

    def _on_survey_comment(self, *, text: str, choice: str, **rest: Any) -> None:
        if choice != SKIP and text.strip():
            self.conv.csat_comment = text.strip()[:2000]
        self.say(_("Thank you for your time. Goodbye!"), expects="none")
        self.go("ended")
        if self.conv.status == ConversationStatus.ACTIVE:
            self.conv.status = ConversationStatus.CLOSED

    def _after_end(self, text: str, choice: str, reading: Understanding | None) -> None:
        """A message after the end starts a new request in the same conversation."""
        if self.step == "survey" or self.step == "survey_comment":
            self._step(text, choice, reading, None)
            return
        self.conv.status = ConversationStatus.ACTIVE
        keep = {k: self.state[k] for k in ("consent", "notice", "email", "name") if k in self.state}
        self.state.clear()
        self.state.update(keep, fields={})
        if "consent" not in keep:
            self.go("consent")
            self.ask_consent()
            return
        self.go("problem")
        if reading is not None and not self._anywhere(text, choice, reading):
            self._on_problem(text=text, choice=choice, reading=reading)
        elif reading is None:
            self.say(_("Tell me, in your own words, what happened."))

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


def _summary(reading: Understanding) -> dict[str, Any]:
    return {
        "language": reading.language,
        "kind": reading.kind.label,
        "kind_confidence": round(reading.kind.confidence, 3),
        "category": reading.category.label,
        "category_best": reading.category.best or reading.category.label,
        "category_confidence": round(reading.category.confidence, 3),
        "frustration": round(reading.frustration, 3),
        "act": reading.act,
        "engine": reading.engine,
        "entities": [{"kind": e.kind, "text": e.text} for e in reading.entities],
    }


def understanding_record(reading: Understanding) -> dict[str, Any]:
    return _summary(reading)


def _shorten(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


def _money(reading: Understanding, text: str) -> Money | None:
    entity = reading.first("amount")
    if entity is not None and isinstance(entity.value, Money):
        return entity.value
    bare = _BARE_AMOUNT.match(text)
    if bare:
        try:
            return Money(Decimal(bare.group(1).replace(",", ".")), "EUR")
        except InvalidOperation:
            return None
    return None


def _fold(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def _match_option(text: str, options: dict[str, str], keywords: dict[str, str]) -> str:
    """The option a typed answer names: its label, its start, or one of its keywords."""
    typed = _fold(text)
    if not typed:
        return ""
    for key, label in options.items():
        if typed == _fold(label) or typed == key:
            return key
    for key, label in options.items():
        folded = _fold(label)
        if len(typed) >= 3 and (folded.startswith(typed) or typed in folded):
            return key
    for key, words in keywords.items():
        for word in re.split(r"[,\s]+", words):
            if len(word) >= 3 and _fold(word) in typed:
                return key
    return ""


def shipment_status(status: str) -> str:
    names = {
        "label_created": _("label created, not yet collected"),
        "in_transit": _("in transit"),
        "out_for_delivery": _("out for delivery"),
        "delivered": _("delivered"),
        "lost": _("lost by the carrier"),
        "returned": _("returned to us"),
    }
    return str(names.get(status, status))


def max_amount_exceeded(amount: str | None, limit: Decimal | None) -> bool:
    return bool(amount) and limit is not None and Decimal(amount) > limit
