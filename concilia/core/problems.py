"""The API's one error type, raised by any app's endpoints and answered as translated JSON."""

from __future__ import annotations


class ApiProblem(Exception):
    """A client mistake with per-field messages, answered as JSON by the API's error handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
