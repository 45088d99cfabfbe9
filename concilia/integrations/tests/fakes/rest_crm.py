"""A fake in-house CRM with its own REST API, for the generic REST CRM connector: contacts
(a fuzzy search by e-mail, create, update, upsert by e-mail) and activities on a contact that
honour an Idempotency-Key, behind `Authorization: Token <token>`.

    GET   /v1/contacts?q=<text>                 {"data": [contact, ...]} (any text field holding it)
    POST  /v1/contacts                          201 {"data": contact}; 409 if the e-mail exists
    PATCH /v1/contacts/<id>                     200 {"data": contact}
    PUT   /v1/contacts/by-email/<email>         200 or 201 {"data": contact}
    POST  /v1/contacts/<id>/activities          201 {"data": activity}; a repeated key gets the
                                                first answer (200); no key is refused (400)

A contact: {"id", "email", "profile": {"first", "last"}, "phone", "segment"}.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import unquote

from concilia.integrations.tests.fakes import Answer, FakeServer, Received

TOKEN = "crm-test-token-0123456789"

CONTACT_FIELDS = {"email", "profile", "phone", "segment"}


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})


class FakeRestCrm(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.activities: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(7001)

    def add_contact(self, **fields: Any) -> dict[str, Any]:
        contact = {"id": f"C{next(self._ids)}", **fields}
        self.contacts[contact["id"]] = contact
        return contact

    def _find(self, email: str) -> dict[str, Any] | None:
        for contact in self.contacts.values():
            if str(contact.get("email", "")).lower() == email.lower():
                return contact
        return None

    def answer(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Token {TOKEN}":
            return _error(401, "unauthenticated", "Send 'Authorization: Token <token>'.")
        body = request.body if isinstance(request.body, dict) else {}
        path = request.path
        if path == "/v1/contacts" and request.method == "GET":
            text = request.query.get("q", "").lower()
            found = [
                c
                for c in self.contacts.values()
                if any(isinstance(v, str) and text in v.lower() for v in c.values())
            ]
            return Answer(200, {"data": found, "count": len(found)})
        if path == "/v1/contacts" and request.method == "POST":
            if not body.get("email"):
                return _error(422, "invalid", "email is required")
            if self._find(body["email"]):
                return _error(409, "conflict", "a contact with this email exists")
            return Answer(201, {"data": self.add_contact(**self._fields(body))})
        match = re.fullmatch(r"/v1/contacts/by-email/([^/]+)", path)
        if match and request.method == "PUT":
            email = unquote(match[1])
            contact = self._find(email)
            if contact is None:
                return Answer(201, {"data": self.add_contact(email=email, **self._fields(body))})
            self._update(contact, body)
            return Answer(200, {"data": contact})
        match = re.fullmatch(r"/v1/contacts/(C\d+)", path)
        if match and request.method == "PATCH":
            contact = self.contacts.get(match[1])
            if contact is None:
                return _error(404, "not_found", "no such contact")
            self._update(contact, body)
            return Answer(200, {"data": contact})
        match = re.fullmatch(r"/v1/contacts/(C\d+)/activities", path)
        if match and request.method == "POST":
            return self._activity(match[1], request, body)
        return _error(404, "not_found", "no such resource")

    def _activity(self, contact_id: str, request: Received, body: dict[str, Any]) -> Answer:
        if contact_id not in self.contacts:
            return _error(404, "not_found", "no such contact")
        key = request.headers.get("idempotency-key")
        if not key:
            return _error(400, "idempotency_key_required", "send an Idempotency-Key header")
        if key in self._by_key:
            return Answer(200, {"data": self._by_key[key]})
        activity = {"id": f"A{next(self._ids)}", "contact": contact_id, **body}
        self.activities[activity["id"]] = activity
        self._by_key[key] = activity
        return Answer(201, {"data": activity})

    @staticmethod
    def _fields(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k in CONTACT_FIELDS}

    def _update(self, contact: dict[str, Any], body: dict[str, Any]) -> None:
        for key, value in self._fields(body).items():
            if isinstance(value, dict):
                contact.setdefault(key, {}).update(value)
            else:
                contact[key] = value
