"""A fake HubSpot speaking CRM API v3: contacts (search by e-mail, create, update) and notes
(search, create with an association), bearer-token authentication and HubSpot's error bodies."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import uuid
from typing import Any

from concilia.integrations.tests.fakes import Answer, FakeServer, Received

TOKEN = "pat-eu1-00000000-0000-0000-0000-000000000000"


def _error(status: int, category: str, message: str) -> Answer:
    return Answer(
        status,
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        },
    )


def _matches(record: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    for rule in filters:
        value = str(record["properties"].get(rule["propertyName"]) or "")
        if rule["operator"] == "EQ" and value.lower() != str(rule["value"]).lower():
            return False
        if rule["operator"] == "CONTAINS_TOKEN" and str(rule["value"]) not in value:
            return False
    return True


class FakeHubSpot(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(501)

    def add_contact(self, **properties: str) -> dict[str, Any]:
        return self._create(self.contacts, properties)

    def _create(self, store: dict, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = {
            "id": str(next(self._ids)),
            "properties": dict(properties),
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
            **extra,
        }
        store[record["id"]] = record
        return record

    def answer(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            )
        match = re.fullmatch(r"/crm/v3/objects/(contacts|notes)(?:/(search|\d+))?", request.path)
        if not match:
            return Answer(404, None)
        store = self.contacts if match[1] == "contacts" else self.notes
        body = request.body or {}
        if match[2] == "search" and request.method == "POST":
            filters = [f for group in body.get("filterGroups", []) for f in group["filters"]]
            found = [r for r in store.values() if _matches(r, filters)]
            return Answer(200, {"total": len(found), "results": found[: body.get("limit", 10)]})
        if match[2] is None and request.method == "POST":
            properties = body.get("properties") or {}
            if match[1] == "contacts":
                email = str(properties.get("email", "")).lower()
                for record in self.contacts.values():
                    if record["properties"].get("email", "").lower() == email:
                        return _error(
                            409, "CONFLICT", f"Contact already exists. Existing ID: {record['id']}"
                        )
                return Answer(201, self._create(self.contacts, properties))
            if "hs_timestamp" not in properties:
                return _error(400, "VALIDATION_ERROR", "Property values were not valid")
            note = self._create(self.notes, properties, associations=body.get("associations", []))
            return Answer(201, note)
        if match[2] and match[2].isdigit() and request.method == "PATCH":
            record = store.get(match[2])
            if record is None:
                return _error(404, "OBJECT_NOT_FOUND", "resource not found")
            record["properties"].update(body.get("properties") or {})
            return Answer(200, record)
        return Answer(405, None)
