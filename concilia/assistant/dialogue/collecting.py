"""Collecting a case: who the customer is, the flow's slots, corrections, the summary."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from concilia.assistant import flows, knowledge, verification, visits
from concilia.assistant.dialogue.base import (
    _ORDER_TOKEN,
    NEW_CASE,
    NO,
    SKIP,
    YES,
    _iso_date,
    _match_option,
    _money,
    _shorten,
    open_case_references,
    shipment_status,
)
from concilia.assistant.models import (
    ChatUpload,
    TroubleshootingGuide,
)
from concilia.core.ports import order_lookup
from concilia.customers.models import Customer
from concilia.nlu import Money, Understanding


class Collecting:
    """Who the customer is, the slots of the category's flow, corrections and the summary."""

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
            Customer.objects.with_email(candidate).filter(cases__isnull=False).distinct().first()
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
            self.state["open_cases"] = open_case_references(customer)
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
            choices = list(self._products().items())
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
                self._products()
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

    def _active_guides(self) -> list[TroubleshootingGuide]:
        if self._guides is None:
            self._guides = list(TroubleshootingGuide.objects.filter(active=True))
        return self._guides

    def _products(self) -> dict[str, str]:
        """The products with a troubleshooting guide, then "another product"."""
        products = {g.code: g.product_in(self.conv.language) for g in self._active_guides()}
        return products | {"other": str(_("Another product"))}

    def _guide_keywords(self) -> dict[str, str]:
        return {guide.code: guide.keywords for guide in self._active_guides()}

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
        elif step == "offer":
            self.present_offer(self.state.get("offer", ""))
        elif step == "deciding":
            self._on_deciding()
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
