"""Response headers that harden every page beyond Django's own (the CSP comes from django-csp)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


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
