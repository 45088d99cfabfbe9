"""`concilia demo`: a demo company with staff logins, an API token and sample cases.

The helpdesk is set up before the sample complaints arrive (a business calendar with holidays,
two teams, role groups, assignment rules and reply templates), so the samples are routed as any
new case would be.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone, translation

from concilia.accounts.models import ROLE_GROUPS, ApiToken, Role, Team, User
from concilia.cases.actions import add_customer_message, change_status, reply_to_customer
from concilia.cases.models import (
    ActorKind,
    AssignmentRule,
    Category,
    Channel,
    Kind,
    Outcome,
    ReplyTemplate,
    Status,
    Strategy,
)
from concilia.core.memo import forget_all
from concilia.core.models import BusinessCalendar, Holiday
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


# Spanish national holidays (the calendar's own; holidays without a calendar apply to every one).
HOLIDAYS = [
    (dt.date(2026, 12, 8), "Inmaculada Concepción"),
    (dt.date(2026, 12, 25), "Natividad del Señor"),
    (dt.date(2027, 1, 1), "Año Nuevo"),
    (dt.date(2027, 1, 6), "Epifanía del Señor"),
]

TEAMS = [
    # code, Spanish, English
    ("customer-care", "Atención al cliente", "Customer care"),
    ("logistics", "Logística", "Logistics"),
]

# Staff besides the administrator: username, first name, role, teams (agents first: routing
# breaks ties by the order people were created).
STAFF = [
    ("agent", "Agente", Role.AGENT, ["customer-care"]),
    ("agent2", "Agente 2", Role.AGENT, ["logistics"]),
    ("supervisor", "Supervisora", Role.SUPERVISOR, ["customer-care", "logistics"]),
]

# Delivery problems go to logistics in turn; everything else to the least loaded carer.
RULES = [
    # name, category code (None: any), team code, strategy
    ("Retrasos en la entrega → Logística", "shipping_delay", "logistics", Strategy.ROUND_ROBIN),
    (
        "Envíos dañados o incompletos → Logística",
        "damaged_missing",
        "logistics",
        Strategy.ROUND_ROBIN,
    ),
    ("Todo lo demás → Atención al cliente", None, "customer-care", Strategy.LEAST_LOADED),
]

REPLY_TEMPLATES = [
    (
        "acknowledgement",
        "Acuse de recibo",
        "Acknowledgement",
        "Hola, {{ customer_name }}:\n\n"
        "Gracias por escribirnos. Hemos recibido tu caso {{ reference }} y ya lo estamos "
        "revisando. Te responderemos como muy tarde el {{ deadline }}.\n\n"
        "Un saludo,\n{{ agent_name }}",
        "Hello {{ customer_name }},\n\n"
        "Thank you for getting in touch. We have received your case {{ reference }} and are "
        "looking into it. We will answer by {{ deadline }} at the latest.\n\n"
        "Kind regards,\n{{ agent_name }}",
    ),
    (
        "more-information",
        "Solicitud de más información",
        "Request for more information",
        "Hola, {{ customer_name }}:\n\n"
        "Para resolver tu caso {{ reference }} necesitamos un poco más de información. "
        "¿Puedes responder a este mensaje adjuntando una foto del producto y de su embalaje, "
        "y la factura del pedido {{ order_number }}?\n\n"
        "En cuanto la recibamos seguiremos con tu caso.\n\n"
        "Un saludo,\n{{ agent_name }}",
        "Hello {{ customer_name }},\n\n"
        "To resolve your case {{ reference }} we need a little more information. Could you "
        "reply to this message with a photo of the product and its packaging, and the invoice "
        "for order {{ order_number }}?\n\n"
        "As soon as we receive it we will carry on with your case.\n\n"
        "Kind regards,\n{{ agent_name }}",
    ),
    (
        "resolution-refund",
        "Resolución con reembolso",
        "Resolution with a refund",
        "Hola, {{ customer_name }}:\n\n"
        "Hemos revisado tu caso {{ reference }} y tienes razón. Hemos ordenado el reembolso "
        "del pedido {{ order_number }} al mismo medio de pago que usaste en la compra; lo "
        "verás en un plazo de 5 a 10 días hábiles, según tu banco.\n\n"
        "Sentimos las molestias.\n\n"
        "Un saludo,\n{{ agent_name }}",
        "Hello {{ customer_name }},\n\n"
        "We have reviewed your case {{ reference }} and you are right. We have issued a "
        "refund for order {{ order_number }} to the payment method you used for the purchase; "
        "it should reach you within 5 to 10 business days, depending on your bank.\n\n"
        "We are sorry for the trouble.\n\n"
        "Kind regards,\n{{ agent_name }}",
    ),
    (
        "closing",
        "Cierre del caso",
        "Closing the case",
        "Hola, {{ customer_name }}:\n\n"
        "Damos por resuelto tu caso {{ reference }}. Si algo no ha quedado bien, responde a "
        "este mensaje y lo retomaremos.\n\n"
        "Gracias por tu paciencia.\n\n"
        "Un saludo,\n{{ agent_name }}",
        "Hello {{ customer_name }},\n\n"
        "We consider your case {{ reference }} resolved. If anything is still not right, just "
        "reply to this message and we will pick it up again.\n\n"
        "Thank you for your patience.\n\n"
        "Kind regards,\n{{ agent_name }}",
    ),
]


# Cases already worked to an end, so the helpdesk has a history to show as "similar past cases".
HISTORY = [
    (
        "Pedro Sanz",
        "pedro@example.com",
        "es",
        "billing_error",
        "Me han cobrado dos veces la cuota de septiembre en la tarjeta.",
        Decimal("49.90"),
        "Hola Pedro: hemos comprobado el doble cargo y le hemos devuelto 49,90 EUR a su tarjeta. "
        "Lo verá en 3 a 5 días hábiles.",
        Outcome.RESOLVED,
    ),
    (
        "Emma Brown",
        "emma@example.com",
        "en",
        "damaged_missing",
        "The box arrived crushed and the mirror inside was broken.",
        None,
        "Hello Emma, we are sorry: a new mirror is on its way and the courier will collect the "
        "broken one.",
        Outcome.RESOLVED,
    ),
    (
        "Jorge Díaz",
        "jorge@example.com",
        "es",
        "shipping_delay",
        "Mi pedido lleva diez días de retraso y nadie me dice nada.",
        None,
        "Hola Jorge: la empresa de transporte perdió el paquete; se lo hemos reenviado por "
        "mensajería urgente y le devolvemos los gastos de envío.",
        Outcome.PARTIALLY_RESOLVED,
    ),
    (
        "Laura Gómez",
        "laura@example.com",
        "es",
        "billing_error",
        "Me cobraron una comisión que no aparecía en la oferta.",
        Decimal("12.00"),
        "Hola Laura: la comisión figuraba en las condiciones que aceptó, así que no procede "
        "devolverla. Le explicamos el detalle en el anexo.",
        Outcome.REJECTED,
    ),
]


class Command(BaseCommand):
    help = "Load a demo company: staff logins, an API token and sample cases (safe to run twice)."

    def handle(self, *args, **options):
        settings.HOME.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        with transaction.atomic():
            created = self._load()
            # The assistant's knowledge base and guides (a higher floor: called by name).
            call_command("demo_assistant", verbosity=0, stdout=self.stdout)
            # The demo shop's policy (the resolution engine, also a higher floor).
            call_command("demo_resolution", verbosity=0, stdout=self.stdout)
        if created:
            self.stdout.write(self.style.SUCCESS("Demo company loaded."))
        else:
            self.stdout.write("Demo company already loaded.")
        self.stdout.write(
            "Demo logins (staff admin at /admin/):\n"
            f"  administrator  admin / {DEMO_PASSWORD}\n"
            f"  supervisor     supervisor / {DEMO_PASSWORD}  (customer care and logistics)\n"
            f"  agent          agent / {DEMO_PASSWORD}  (customer care)\n"
            f"  agent          agent2 / {DEMO_PASSWORD}  (logistics)\n"
            f"Customer emails go to files in {settings.EMAIL_FILE_PATH}\n"
            "  (open the newest one to find a tracking sign-in link).\n"
            "The complaints assistant: /chat/ (and the widget: /static/concilia/widget.js)."
        )
        if created:
            self.stdout.write(f"API token for the demo integration (shown once): {created}")

    def _load(self) -> str:
        if User.objects.filter(username="admin").exists():
            return ""
        admin = User.objects.create_superuser(
            "admin", "admin@concilia.localhost", DEMO_PASSWORD, first_name="Admin"
        )
        admin.groups.add(_role_group(Role.ADMINISTRATOR))
        staff = self._load_helpdesk()
        agent = staff["agent"]
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
        for name, email, language, code, text, amount, answer, outcome in HISTORY:
            with translation.override(language):
                case = submit_complaint(
                    data={
                        "name": name,
                        "email": email,
                        "category": categories[code],
                        "kind": Kind.COMPLAINT,
                        "description": text,
                        "desired_resolution": "",
                        "notice_version": notice,
                        "amount": amount,
                    },
                    channel=Channel.WEB,
                    language=language,
                ).case
                reply_to_customer(
                    case=case,
                    body=answer,
                    author=case.assignee or agent,
                    status=Status.CLOSED,
                    outcome=outcome,
                )
        return raw

    def _load_helpdesk(self) -> dict[str, User]:
        """Calendar, teams, staff in their role groups and teams, routing rules, reply templates."""
        calendar = BusinessCalendar(
            name="Oficina Madrid",
            time_zone="Europe/Madrid",
            workdays="12345",
            opens=dt.time(9),
            closes=dt.time(18),
        )
        _save_valid(calendar)
        for date, name in HOLIDAYS:
            _save_valid(Holiday(date=date, name=name, calendar=calendar))
        teams = {}
        for code, name_es, name_en in TEAMS:
            teams[code] = _save_valid(
                Team(code=code, name_es=name_es, name_en=name_en, calendar=calendar)
            )
        case_permissions = Permission.objects.filter(
            content_type__app_label="cases", codename__in=["view_case", "change_case"]
        )
        staff = {}
        for username, first_name, role, team_codes in STAFF:
            user = User.objects.create_user(
                username,
                f"{username}@concilia.localhost",
                DEMO_PASSWORD,
                first_name=first_name,
                is_staff=True,
            )
            user.user_permissions.add(*case_permissions)
            user.groups.add(_role_group(role), *(teams[code].group for code in team_codes))
            staff[username] = user
        categories = {c.code: c for c in Category.objects.all()}
        for position, (name, category, team, strategy) in enumerate(RULES, start=1):
            _save_valid(
                AssignmentRule(
                    name=name,
                    position=position * 10,
                    category=categories[category] if category else None,
                    team=teams[team],
                    strategy=strategy,
                )
            )
        for position, (code, name_es, name_en, body_es, body_en) in enumerate(
            REPLY_TEMPLATES, start=1
        ):
            _save_valid(
                ReplyTemplate(
                    code=code,
                    name_es=name_es,
                    name_en=name_en,
                    body_es=body_es,
                    body_en=body_en,
                    position=position * 10,
                )
            )
        forget_all()  # rules and holidays read in this process before are re-read now
        return staff


def _role_group(role: Role) -> Group:
    return Group.objects.get(name=ROLE_GROUPS[role][0])


def _save_valid(obj):
    """Save demo configuration as the admin would: validated first (templates' variables...)."""
    obj.full_clean()
    obj.save()
    return obj
