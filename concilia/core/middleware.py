"""Response headers that harden every page: a Content-Security-Policy allowing only our own files."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse


def content_security_policy(frame_ancestors: Iterable[str] = ("'none'",)) -> str:
    """The policy; only a page meant to be framed (the chat widget's) names other ancestors."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors " + " ".join(frame_ancestors),
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
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
