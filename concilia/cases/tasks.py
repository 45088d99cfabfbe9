"""Background jobs of the cases app: telling the customer their case was received."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from concilia.cases.models import Case


@task()
def send_case_confirmation(*, case_id: int) -> None:
    case = Case.objects.select_related("customer", "category").filter(pk=case_id).first()
    if case is None:
        return
    with translation.override(case.language):
        context = {
            "case": case,
            "customer": case.customer,
            "track_url": settings.BASE_URL
            + reverse("intake:track")
            + f"?reference={case.reference}",
        }
        message = EmailMultiAlternatives(
            subject=_("We have received your case %(reference)s") % {"reference": case.reference},
            body=render_to_string("cases/email/confirmation.txt", context),
            to=[case.customer.email],
            headers={"X-Concilia-Reference": case.reference},
        )
        message.attach_alternative(
            render_to_string("cases/email/confirmation.html", context), "text/html"
        )
        message.send()
