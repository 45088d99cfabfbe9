"""API authentication: bearer tokens for integrations and staff, anonymous where an endpoint allows it.

Each endpoint names the scope it needs (`TokenAuth(scope=Scope.CASES_READ)`); a valid token
without it gets 403, a token over its rate limit 429. The token's user's own permissions are
checked by the endpoint as before. Browser sessions never reach this code.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import HttpBearer

from concilia.accounts.models import ApiToken, Scope
from concilia.core.problems import ApiProblem
from concilia.core.throttling import api_tokens


class Anonymous:
    """The caller of an endpoint that accepts anonymous requests and sent no token."""

    user = None
    pk = None

    def __bool__(self) -> bool:  # ninja treats a falsy result as "not authenticated"
        return True


ANONYMOUS = Anonymous()


def require_scope(token: ApiToken, scope: str) -> None:
    """403 unless the token holds `scope` (for endpoints that decide which scope they need)."""
    if not token.has_scope(scope):
        raise ApiProblem(
            403,
            _("This token lacks the scope %(scope)s needed here.") % {"scope": scope},
            [
                {
                    "field": "",
                    "code": "missing_scope",
                    "message": _("Issue or edit a token with the scope %(scope)s.")
                    % {"scope": scope},
                }
            ],
        )


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cnc_…`; a missing or unknown token gets 401, a missing scope 403."""

    def __init__(self, scope: Scope | str | None = None):
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        api_token = ApiToken.authenticate(token)
        if api_token is None:
            return None
        limiter = api_tokens()
        if not limiter.hit(str(api_token.pk)):
            raise ApiProblem(
                429,
                _("This token has made too many requests; try again later."),
                headers={"Retry-After": str(limiter.retry_after())},
            )
        api_token.record_use()
        if self.scope is not None:
            require_scope(api_token, self.scope)
        return api_token


class OptionalTokenAuth(TokenAuth):
    """Anonymous callers are let through; a token, if sent, must be valid and hold the scope."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.headers.get(self.header):
            return ANONYMOUS
        return super().__call__(request)
