"""HubSpot through its CRM API v3 as a CustomerDirectory: contacts found by e-mail (search),
created or updated, and each case's opening and closing logged as a note on the contact.

Authentication is a private app's access token (scopes crm.objects.contacts.read and .write),
sent as a bearer token. A note is written once per case and event: before writing, the notes
that mention the case's reference are searched and an existing one is reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from concilia.core.ports import CaseSummary, CustomerProfile
from concilia.integrations import mapping
from concilia.integrations.resilience import ConnectorClient

# HubSpot's own association type: note → contact.
NOTE_TO_CONTACT = 202


class HubSpotDirectory:
    name = "hubspot"

    def __init__(
        self, *, url: str | None = None, token: str | None = None, tier_property: str | None = None
    ) -> None:
        token = token if token is not None else settings.HUBSPOT_TOKEN
        if not token:
            raise ImproperlyConfigured(
                "HubSpot connector: set CONCILIA_HUBSPOT_TOKEN (or _FILE) to a private app's token."
            )
        self.tier_property = (
            tier_property if tier_property is not None else settings.HUBSPOT_TIER_PROPERTY
        )
        self.client = ConnectorClient(
            self.name,
            base_url=url if url is not None else settings.HUBSPOT_URL,
            headers={"Authorization": f"Bearer {token}"},
        )

    def _contact(self, email: str) -> Mapping[str, Any] | None:
        properties = ["email", "firstname", "lastname", "phone"]
        if self.tier_property:
            properties.append(self.tier_property)
        body = self.client.request(
            "POST",
            "/crm/v3/objects/contacts/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
                ],
                "properties": properties,
                "limit": 1,
            },
        )
        results = (body or {}).get("results") or []
        return results[0] if results else None

    def pull_customer(self, *, email: str) -> CustomerProfile | None:
        contact = self._contact(email.strip())
        if contact is None:
            return None
        props = contact.get("properties") or {}
        name = " ".join(mapping.text(props.get(k)) for k in ("firstname", "lastname")).strip()
        return CustomerProfile(
            email=mapping.text(props.get("email")) or email,
            name=name,
            phone=mapping.text(props.get("phone")),
            tier=mapping.text(props.get(self.tier_property)) if self.tier_property else "",
        )

    def push_customer(self, customer: CustomerProfile) -> str:
        first, _sep, last = customer.name.strip().partition(" ")
        wanted = {"firstname": first, "lastname": last, "phone": customer.phone}
        wanted = {k: v for k, v in wanted.items() if v}  # never blank what the CRM knows
        contact = self._contact(customer.email)
        if contact is None:
            created = self.client.request(
                "POST",
                "/crm/v3/objects/contacts",
                json={"properties": {"email": customer.email, **wanted}},
            )
            return str(created["id"])
        known = contact.get("properties") or {}
        changed = {k: v for k, v in wanted.items() if known.get(k) != v}
        if changed:
            self.client.request(
                "PATCH", f"/crm/v3/objects/contacts/{contact['id']}", json={"properties": changed}
            )
        return str(contact["id"])

    def push_case_summary(self, summary: CaseSummary) -> str:
        contact_id = self.push_customer(CustomerProfile(email=summary.customer_email))
        marker = f"[Concilia {summary.reference} {summary.event}]"
        found = self.client.request(
            "POST",
            "/crm/v3/objects/notes/search",
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "hs_note_body",
                                "operator": "CONTAINS_TOKEN",
                                "value": summary.reference,
                            }
                        ]
                    }
                ],
                "properties": ["hs_note_body"],
                "limit": 100,
            },
        )
        for note in (found or {}).get("results") or []:
            if mapping.text((note.get("properties") or {}).get("hs_note_body")).startswith(marker):
                return str(note["id"])
        note = self.client.request(
            "POST",
            "/crm/v3/objects/notes",
            json={
                "properties": {
                    "hs_timestamp": mapping.iso_utc(summary.closed_at or summary.opened_at),
                    "hs_note_body": f"{marker} {summary_text(summary)}",
                },
                "associations": [
                    {
                        "to": {"id": contact_id},
                        "types": [
                            {
                                "associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": NOTE_TO_CONTACT,
                            }
                        ],
                    }
                ],
            },
        )
        return str(note["id"])


def summary_text(summary: CaseSummary) -> str:
    """One line a person reads in the CRM: the case opened, or closed with its outcome."""
    if summary.event == "closed":
        text = _("Case %(reference)s (%(category)s) closed: %(outcome)s.")
    else:
        text = _("Case %(reference)s (%(category)s) opened.")
    text %= {
        "reference": summary.reference,
        "category": summary.category,
        "outcome": summary.outcome or summary.status,
    }
    return f"{text} {summary.url}".strip()
