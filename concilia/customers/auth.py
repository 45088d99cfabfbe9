"""A customer's signed-in session, separate from staff logins."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from concilia.customers.models import Customer

SESSION_KEY = "concilia_customer_id"


def sign_in(request: HttpRequest, customer: Customer) -> None:
    request.session.cycle_key()
    request.session[SESSION_KEY] = customer.pk
    request.session.set_expiry(settings.CONCILIA_CUSTOMER_SESSION_HOURS * 3600)


def sign_out(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


def current_customer(request: HttpRequest) -> Customer | None:
    customer_id = request.session.get(SESSION_KEY)
    if not customer_id:
        return None
    if not hasattr(request, "_concilia_customer"):
        request._concilia_customer = Customer.objects.filter(pk=customer_id).first()  # type: ignore[attr-defined]
    return request._concilia_customer  # type: ignore[attr-defined]
