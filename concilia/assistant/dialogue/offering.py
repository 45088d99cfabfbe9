"""The company's policies in the chat: waiting for their decision on a new case, then an offer
answered in place (accept, choose, counter, say no)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from concilia.assistant.dialogue.base import NO, YES, _money
from concilia.assistant.models import HandoverReason
from concilia.nlu import Understanding
from concilia.resolution import actions as resolution
from concilia.resolution.engine import describe
from concilia.resolution.models import Offer

COUNTER, REJECT = "counter", "reject"
# What a message expects when more follows without the customer's answer: the client asks for it.
WAIT = "wait"


class Offering:
    """The `deciding`, `offer`, `offer_counter` and `offer_reject` steps."""

    def await_decision(self, case_id: int) -> None:
        """The case is open and the policies decide it after this turn's reply (a job): the
        customer is told an answer is coming, and the job says it in the chat."""
        self.say(
            _("One moment, please: I am checking what we can do for you right away."), (), WAIT
        )
        self.go("deciding")
        self.decide_case = case_id

    def _on_deciding(self, **rest: Any) -> None:
        self.say(
            _("I am still checking what we can do for you; the answer will appear here shortly."),
            (),
            WAIT,
        )

    def present_offer(self, public_id: str, lead: str = "") -> None:
        offer = Offer.objects.filter(public_id=public_id).first()
        if offer is None or not offer.is_open:
            self._ask_survey()
            return
        language = self.conv.language
        settlements = offer.settlements()
        choices: list[tuple[str, str]] = [
            (f"accept:{n}", _("I accept %(option)s") % {"option": describe(s, language)})
            for n, s in enumerate(settlements)
        ]
        if offer.counter_terms is not None:
            choices.append((COUNTER, _("Propose another amount")))
        choices.append((REJECT, _("No, thanks")))
        self.state["offer"] = str(offer.public_id)
        self.say(lead or _("This is what we can offer you:"), choices, "choice")
        self.go("offer")

    def _offer(self) -> Offer | None:
        return Offer.objects.filter(public_id=self.state.get("offer")).first()

    def _on_offer(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        offer = self._offer()
        if offer is None:
            self._ask_survey()
            return
        if choice.startswith("accept:") and choice[7:].isdigit():
            self._settle(lambda: resolution.accept_offer(offer=offer, option=int(choice[7:])))
            return
        if choice == COUNTER:
            self.say(_("What amount would you consider fair?"), expects="text")
            self.go("offer_counter")
            return
        money = _money(reading, text) if reading is not None and not choice else None
        if money is not None and offer.counter_terms is not None:
            self._counter(offer, str(money.amount))
            return
        answer = self._yes_no(choice, reading)
        if choice == REJECT or answer == NO:
            self.say(_("I understand. Briefly, why does it not suit you?"), expects="text")
            self.go("offer_reject")
            return
        if answer == YES and len(offer.options) == 1:
            self._settle(lambda: resolution.accept_offer(offer=offer))
            return
        self.present_offer(str(offer.public_id), _("Please choose one of the options:"))

    def _on_offer_counter(
        self, *, text: str, choice: str, reading: Understanding | None, **rest: Any
    ) -> None:
        offer = self._offer()
        if offer is None:
            self._ask_survey()
            return
        money = _money(reading, text) if reading is not None else None
        self._counter(offer, str(money.amount) if money is not None else text)

    def _counter(self, offer: Offer, amount: str) -> None:
        try:
            result = resolution.counter_offer(offer=offer, amount=amount, hand_over=False)
        except resolution.InvalidAnswer as error:
            self.say(str(error), expects="text")
            self.go("offer_counter")
            return
        except (resolution.OfferNotOpen, resolution.OfferExpired):
            self._offer_gone()
            return
        if result.resolution is not None:
            self.conv.resolved_by_assistant = True
            self._ask_survey(resolution.confirmation_text(result.resolution))
        elif result.offer is not None:
            self.present_offer(str(result.offer.public_id), result.message)
        else:
            self.say(result.message)
            self.handover = (HandoverReason.POLICY, "counter_offer")

    def _on_offer_reject(self, *, text: str, choice: str, **rest: Any) -> None:
        offer = self._offer()
        if offer is None:
            self._ask_survey()
            return
        try:
            resolution.reject_offer(offer=offer, reason=text, hand_over=False)
        except resolution.InvalidAnswer as error:
            self.say(str(error), expects="text")
            return
        except (resolution.OfferNotOpen, resolution.OfferExpired):
            self._offer_gone()
            return
        self.say(_("Thank you for telling us. A person from our team will look at it with you."))
        self.handover = (HandoverReason.POLICY, "offer_rejected")

    def _settle(self, accept: Any) -> None:
        try:
            agreed = accept()
        except resolution.InvalidAnswer:
            self.present_offer(self.state.get("offer", ""), _("Please choose one of the options:"))
            return
        except (resolution.OfferNotOpen, resolution.OfferExpired):
            self._offer_gone()
            return
        self.conv.resolved_by_assistant = True
        self._ask_survey(resolution.confirmation_text(agreed))

    def _offer_gone(self) -> None:
        self.say(_("This offer is no longer open. A person from our team will help you."))
        self.handover = (HandoverReason.POLICY, "offer_closed")
