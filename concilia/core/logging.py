"""Structured logs: the request id that ties a request's lines (and the jobs it queued) together,
and a formatter writing one JSON object per line (CONCILIA_LOG_FORMAT=json; docs/operations.md).

A 30-line formatter rather than python-json-logger: the fields are fixed and few, and the request's
context comes from a context variable that no library knows about.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# An incoming X-Request-ID is kept when it looks like an id (a proxy's, a load balancer's);
# anything else (too long, spaces, quotes, newlines that would forge log lines) is replaced.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=/+-]{0,127}")


# URL arguments that are secrets (sign-in links, a webhook's code): never written to a log.
SECRET_URL_ARGUMENTS = ("token", "code", "secret", "signature", "key")


def loggable_path(request: Any) -> str:
    """The request's path (never its query string) with secret URL arguments blanked out."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, argument in (match.kwargs if match else {}).items():
        if any(word in name for word in SECRET_URL_ARGUMENTS) and str(argument):
            path = path.replace(str(argument), "[redacted]")
    return path


class RequestContext:
    """What every log line written while serving a request (or running its job) carries."""

    __slots__ = ("request", "request_id")

    def __init__(self, request_id: str, *, request: Any = None):
        self.request_id = request_id
        self.request = request

    @property
    def path(self) -> str:
        return loggable_path(self.request) if self.request is not None else ""

    def redact(self, text: str) -> str:
        """`text` with the request's path blanked as in `path` (Django's own lines quote it)."""
        if self.request is None or (safe := self.path) == self.request.path:
            return text
        return text.replace(self.request.path, safe)

    @property
    def user_id(self) -> int | None:
        # Only a user the request already loaded: a log line never queries the database.
        user = getattr(self.request, "_cached_user", None)
        return user.pk if user is not None and user.is_authenticated else None


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "concilia_request_context", default=None
)


def well_formed_request_id(value: str | None) -> str | None:
    return value if value and REQUEST_ID_PATTERN.fullmatch(value) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    context = _current.get()
    return context.request_id if context else None


@contextmanager
def request_context(request_id: str, *, request: Any = None) -> Iterator[None]:
    """Log lines written inside carry this request id (and path and user, for a request)."""
    token = _current.set(RequestContext(request_id, request=request))
    try:
        yield
    finally:
        _current.reset(token)


def context_of(record: logging.LogRecord) -> RequestContext | None:
    """The request a line is about: the one being served, or the one Django's own lines name
    (its 4xx/5xx lines are written after the middleware has finished)."""
    context = _current.get()
    request = getattr(record, "request", None)
    if context is None and getattr(request, "request_id", None):
        context = RequestContext(request.request_id, request=request)  # type: ignore[union-attr]
    return context


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the request's
    request_id, user_id and path when there is one, status and duration_ms on access lines, and
    the exception's traceback when one is logged."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = context_of(record)
        if context is not None:
            entry["message"] = context.redact(entry["message"])
            entry["request_id"] = context.request_id
            if context.path:
                entry["path"] = context.path
            if (user_id := context.user_id) is not None:
                entry["user_id"] = user_id
        for name in ("status", "method", "duration_ms", "view"):
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The development format, with the request id in brackets when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = context_of(record)
        return f"[{context.request_id}] {context.redact(line)}" if context else line
