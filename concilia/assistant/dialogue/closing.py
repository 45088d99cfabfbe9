"""The end of a conversation: troubleshooting and a technician's visit, the survey."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from concilia.assistant import visits
from concilia.assistant.dialogue.base import (
    NO,
    SKIP,
    YES,
)
from concilia.assistant.models import (
    ConversationStatus,
    TroubleshootingGuide,
)
from concilia.nlu import Understanding


class Closing:
    """Troubleshooting and the technician's visit, the survey, and what follows the end."""

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
