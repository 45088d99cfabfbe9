"""Background jobs of the customers app: emailing sign-in links."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from concilia.core.mail import compose
from concilia.customers.models import SignInLink


@task(queue_name="customer")
def send_sign_in_link(*, link_id: int) -> None:
    link = SignInLink.objects.select_related("customer").filter(pk=link_id).first()
    if link is None or link.used_at is not None:
        return
    customer = link.customer
    with translation.override(customer.language):
        url = settings.BASE_URL + reverse("intake:sign-in", args=[link.token])
        context = {
            "customer": customer,
            "url": url,
            "minutes": settings.CONCILIA_SIGN_IN_LINK_MINUTES,
            "reference": link.next_reference,
        }
        compose(
            subject=_("Your link to follow your case"),
            template="customers/email/sign_in_link",
            context=context,
            to=[customer.email],
        ).send()
