"""A fake in-house shop API for the generic REST connector: bearer token, GET /api/orders/<n>,
POST /api/orders/<n>/refunds honouring Idempotency-Key (the same key answers the same refund)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from concilia.integrations.tests.fakes import Answer, FakeServer, Received

TOKEN = "shop-secret-token"


class FakeShopApi(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}  # by idempotency key
        self._ids = itertools.count(1)

    def answer(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Answer(401, {"error": "unauthorized"})
        match = re.fullmatch(r"/api/orders/([^/]+)(/refunds)?", request.path)
        if not match:
            return Answer(404, {"error": "not found"})
        order = self.orders.get(match[1])
        if order is None:
            return Answer(404, {"error": "no such order"})
        if not match[2] and request.method == "GET":
            return Answer(200, {"data": order})
        if match[2] and request.method == "POST":
            key = request.headers.get("idempotency-key", "")
            if not key:
                return Answer(422, {"error": "Idempotency-Key required"})
            if key not in self.refunds:
                self.refunds[key] = {"refund": {"id": f"R{next(self._ids)}", **request.body}}
            return Answer(201, self.refunds[key])
        return Answer(405, {"error": "method not allowed"})
