"""`concilia demo`: a demo company with staff logins, an API token and sample cases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone, translation

from concilia.accounts.models import ApiToken, User
from concilia.cases.actions import add_customer_message, change_status
from concilia.cases.models import ActorKind, Category, Channel, Kind, Status
from concilia.customers.models import PrivacyNotice
from concilia.intake.actions import submit_complaint

DEMO_PASSWORD = "concilia-demo"  # noqa: S105 - printed on purpose: demo data only

SAMPLES = [
    (
        "Lucía Fernández",
        "lucia@example.com",
        "es",
        "billing_error",
        Kind.COMPLAINT,
        "Me habéis cobrado dos veces la factura de octubre.",
        "Que me devolváis el cargo duplicado.",
        {"purchase_date": 20, "amount": Decimal("49.90")},
    ),
    (
        "Lucía Fernández",
        "lucia@example.com",
        "es",
        "shipping_delay",
        Kind.COMPLAINT,
        "El pedido tenía que llegar hace una semana y sigue sin aparecer.",
        "Que me lo enviéis ya o me devolváis el dinero.",
        {"order_number": "PED-10482", "purchase_date": 12},
    ),
    (
        "James Carter",
        "james@example.com",
        "en",
        "damaged_missing",
        Kind.COMPLAINT,
        "The parcel arrived with the box crushed and the lamp inside is broken.",
        "A replacement lamp.",
        {"order_number": "ORD-55120", "purchase_date": 6},
    ),
    (
        "Marta Ruiz",
        "marta@example.com",
        "es",
        "staff_conduct",
        Kind.COMPLAINT,
        "La persona que me atendió por teléfono fue muy maleducada y me colgó.",
        "Una disculpa y que me llamen.",
        {},
    ),
    (
        "James Carter",
        "james@example.com",
        "en",
        "other",
        Kind.SUGGESTION,
        "It would help to be able to choose a delivery time slot.",
        "",
        {},
    ),
    (
        "Ana López",
        "ana@example.com",
        "es",
        "refund",
        Kind.COMPLAINT,
        "Devolví las zapatillas hace tres semanas y no he recibido el reembolso.",
        "El reembolso de 89,95 €.",
        {"order_number": "PED-10377", "purchase_date": 40, "amount": Decimal("89.95")},
    ),
]


class Command(BaseCommand):
    help = "Load a demo company: staff logins, an API token and sample cases (safe to run twice)."

    def handle(self, *args, **options):
        settings.HOME.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        with transaction.atomic():
            created = self._load()
        if created:
            self.stdout.write(self.style.SUCCESS("Demo company loaded."))
        else:
            self.stdout.write("Demo company already loaded.")
        self.stdout.write(
            "Demo logins (staff admin at /admin/):\n"
            f"  administrator  admin / {DEMO_PASSWORD}\n"
            f"  agent          agent / {DEMO_PASSWORD}\n"
            f"Customer emails go to files in {settings.EMAIL_FILE_PATH}\n"
            "  (open the newest one to find a tracking sign-in link)."
        )
        if created:
            self.stdout.write(f"API token for the demo integration (shown once): {created}")

    def _load(self) -> str:
        if User.objects.filter(username="admin").exists():
            return ""
        User.objects.create_superuser(
            "admin", "admin@concilia.localhost", DEMO_PASSWORD, first_name="Admin"
        )
        agent = User.objects.create_user(
            "agent", "agent@concilia.localhost", DEMO_PASSWORD, first_name="Agente", is_staff=True
        )
        agent.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="cases", codename__in=["view_case", "change_case"]
            )
        )
        integration = User.objects.create_user("shop-integration", is_staff=False)
        integration.user_permissions.add(Permission.objects.get(codename="view_case"))
        _, raw = ApiToken.issue(user=integration, name="Demo shop")
        notice = PrivacyNotice.objects.current()
        categories = {c.code: c for c in Category.objects.all()}
        today = timezone.localdate()
        for index, (name, email, language, code, kind, text, wish, extra) in enumerate(SAMPLES):
            data = {
                "name": name,
                "email": email,
                "category": categories[code],
                "kind": kind,
                "description": text,
                "desired_resolution": wish,
                "notice_version": notice,
                "order_number": extra.get("order_number", ""),
                "purchase_date": today - dt.timedelta(days=extra["purchase_date"])
                if "purchase_date" in extra
                else None,
                "amount": extra.get("amount"),
            }
            with translation.override(language):
                submission = submit_complaint(
                    data=data,
                    channel=Channel.WEB if index % 2 == 0 else Channel.API,
                    language=language,
                )
            if index == 1:
                add_customer_message(
                    case=submission.case,
                    body="Os adjunto el número de seguimiento: 1Z999AA10123456784.",
                )
            if index == 4:
                change_status(
                    case=submission.case,
                    status=Status.CLOSED,
                    outcome="answered",
                    actor_kind=ActorKind.STAFF,
                    actor_user=agent,
                )
        return raw
