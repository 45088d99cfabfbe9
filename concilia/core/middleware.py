"""Response headers that harden every page beyond Django's own (the CSP comes from django-csp),
the audit log's request context, and each request's id, metrics and access line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from concilia.core import logging as structured
from concilia.core import metrics

# One line per request answered (method, path, status, duration): INFO, on when
# CONCILIA_ACCESS_LOG is (by default with CONCILIA_LOG_FORMAT=json).
access_log = logging.getLogger("concilia.requests")


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        return response


class AuditContextMiddleware:
    """Lets the audit log know whose request it is serving and from where (concilia.core.audit)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        from concilia.core import audit  # its models are ready once middleware is built

        self.serving = audit.serving
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with self.serving(request):
            return self.get_response(request)


class RequestIdMiddleware:
    """First in the chain: gives the request its id (a well-formed incoming X-Request-ID, else a
    new one) for every log line and job it causes, returns it in the X-Request-ID header, counts
    the request for /metrics and writes its access line ("concilia.requests", docs/operations.md).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = (
            structured.well_formed_request_id(request.headers.get("X-Request-ID"))
            or structured.new_request_id()
        )
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        with structured.request_context(request_id, request=request):
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            match = request.resolver_match
            view = (match.view_name or match.route) if match else metrics.UNMATCHED_VIEW
            metrics.observe_request(
                view=view, method=request.method or "", status=response.status_code, seconds=seconds
            )
            access_log.info(
                "%s %s %s",
                request.method,
                structured.loggable_path(request),
                response.status_code,
                extra={
                    "method": request.method,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                    "view": view,
                },
            )
        response.headers["X-Request-ID"] = request_id
        return response
