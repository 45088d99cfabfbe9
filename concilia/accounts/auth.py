"""API authentication: bearer tokens for integrations and staff, anonymous where an endpoint allows it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from concilia.accounts.models import ApiToken


class Anonymous:
    """The caller of an endpoint that accepts anonymous requests and sent no token."""

    user = None
    pk = None

    def __bool__(self) -> bool:  # ninja treats a falsy result as "not authenticated"
        return True


ANONYMOUS = Anonymous()


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cnc_…`; a missing or unknown token gets 401."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return ApiToken.authenticate(token)


class OptionalTokenAuth(TokenAuth):
    """Anonymous callers are let through; a token, if sent, must be valid."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.headers.get(self.header):
            return ANONYMOUS
        return super().__call__(request)
