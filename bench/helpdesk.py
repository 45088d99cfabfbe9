#!/usr/bin/env python3
"""Benchmark: the helpdesk queue and the case list API on 10k, 100k and 1M cases.

Fills one database (SQLite or PostgreSQL) with realistic cases by bulk inserts, growing it size by
size (10,000 → 100,000 → 1,000,000 cases by default). At each size it starts the real server
(`concilia serve`) on loopback, signs a benchmark agent in through /helpdesk/login/ and times
sequential requests of the queue page (/helpdesk/) and of the list API (GET /api/v1/cases) for
the common filters: mine (open cases assigned to me), by customer email, overdue, free text, and
deeper pages through the `after` cursor. It also counts the SQL statements behind each page and
prints the query plan of the main one (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on
SQLite) at the largest size.

Target (the issue): p95 at one million cases ≤ 1.5 x p95 at ten thousand, for every filter but
free text.

    python bench/helpdesk.py --db sqlite                          # 10k, 100k, 1M on SQLite
    python bench/helpdesk.py --db postgres --sizes 10000,100000   # PostgreSQL, two sizes
    python bench/helpdesk.py --db sqlite --sizes 2000 --requests 5 --json /tmp/h.json  # smoke

Without --keep the database (SQLite file in --home, or the PostgreSQL database --pg-db,
default bench_helpdesk) is made afresh and removed at the end; with --keep a filled database is
reused and kept. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import html
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from complaints import (  # noqa: E402 - the sibling benchmark's process and CPU helpers
    CLK_TCK,
    PROTECTED_DATABASES,
    BenchError,
    code_version,
    cpu_delta,
    free_port,
    machine_busy,
    percentile,
    python_speed,
    server_cpu,
    wait_for_quiet,
)

HOST = "127.0.0.1"
PAGE_SIZE = 50
YEARS_OF_HISTORY = 2
BENCH_USERNAME = "bench-agent"
TEXT_WORD = "seguimiento"  # in some customers' follow-up messages ("número de seguimiento")

# ---------------------------------------------------------------------------------------------
# What is measured: (name, query parameters, page number, held to the 1.5x target?)


@dataclass(frozen=True)
class Filter:
    name: str
    params: dict[str, str]
    page: int = 1
    target: bool = True  # the issue exempts free text
    note: str = ""


FILTERS = [
    Filter("mine", {"view": "mine"}, note="open cases assigned to me (view=mine)"),
    Filter("mine p2", {"view": "mine"}, page=2, note="second page through `after`"),
    Filter("email", {"view": "all", "email": "<customer>"}, note="20 customers' emails in turn"),
    Filter("overdue", {"view": "all", "alert": "overdue"}),
    Filter("overdue p2", {"view": "all", "alert": "overdue"}, page=2),
    Filter("activity p20", {"view": "all", "sort": "activity"}, page=20, note="rows 951-1000"),
    Filter("text", {"view": "all", "q": TEXT_WORD}, target=False, note="free text (exempt)"),
    Filter("all", {"view": "all"}, target=False, note="extra: every visible case by deadline"),
]

# ---------------------------------------------------------------------------------------------
# The company: teams, agents and what each category is about

TEAMS = [
    # code, Spanish, English (the demo makes the first two)
    ("customer-care", "Atención al cliente", "Customer care"),
    ("logistics", "Logística", "Logistics"),
    ("billing", "Facturación", "Billing"),
]
# username, first name, team, share of the team's cases. The benchmark agent works in two teams
# and carries more, so that at 10,000 cases its queue and its overdue list already fill 2 pages.
AGENTS = [
    ("agent", "Agente", "customer-care", 1),
    (BENCH_USERNAME, "Bench", "customer-care", 4),
    (BENCH_USERNAME, "Bench", "billing", 2),
    ("cc-3", "Carmen", "customer-care", 1),
    ("agent2", "Agente 2", "logistics", 1),
    ("log-2", "Luis", "logistics", 1),
    ("log-3", "Laura", "logistics", 1),
    ("bill-1", "Beatriz", "billing", 1),
    ("bill-2", "Bruno", "billing", 1),
    ("bill-3", "Berta", "billing", 1),
]
# category -> (team, weight among all cases)
CATEGORIES = {
    "shipping_delay": ("logistics", 20),
    "damaged_missing": ("logistics", 12),
    "return": ("logistics", 10),
    "billing_error": ("billing", 12),
    "refund": ("billing", 16),
    "technical_problem": ("customer-care", 14),
    "staff_conduct": ("customer-care", 4),
    "other": ("customer-care", 12),
}
KINDS = (["complaint", "question", "suggestion", "thanks"], [80, 12, 5, 3])
CHANNELS = (["web", "email", "api", "chat"], [50, 25, 15, 10])
PRIORITIES = (["low", "normal", "high", "urgent"], [15, 65, 15, 5])
OUTCOMES = (
    ["resolved", "partially_resolved", "rejected", "answered", "withdrawn", "duplicate"],
    [45, 15, 15, 15, 7, 3],
)

FIRST_ES = ["Lucía", "Marta", "Ana", "Javier", "Carlos", "Elena", "Pablo", "Sofía", "Diego", "Inés"]
LAST_ES = ["Fernández", "Ruiz", "López", "García", "Martín", "Sánchez", "Gómez", "Díaz", "Moreno"]
FIRST_EN = ["James", "Emma", "Oliver", "Amelia", "Harry", "Isla", "Jack", "Grace", "Noah", "Ella"]
LAST_EN = ["Carter", "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Wright"]
DOMAINS = ["mail.example.com", "correo.example.net", "example.org", "shop.example.com"]
ASCII = str.maketrans("áéíóúñü", "aeiounu")

PRODUCTS_ES = ["las zapatillas", "la lámpara", "el portátil", "la cafetera", "los auriculares"]
PRODUCTS_EN = ["the trainers", "the lamp", "the laptop", "the coffee maker", "the headphones"]
TEXTS = {
    "billing_error": (
        [
            "Me habéis cobrado dos veces la factura de {month}. El cargo duplicado es de {amount} €.",
            "En la factura {order} aparece un importe de {amount} € que no corresponde a lo contratado.",
        ],
        [
            "I was charged twice for the {month} invoice. The duplicate charge is {amount} EUR.",
            "Invoice {order} shows {amount} EUR, which is not what I signed up for.",
        ],
    ),
    "refund": (
        ["Devolví {product} hace {days} días y no he recibido el reembolso de {amount} €."],
        ["I returned {product} {days} days ago and have not received the {amount} EUR refund."],
    ),
    "return": (
        ["Quiero devolver {product} del pedido {order} pero la web no genera la etiqueta."],
        ["I want to return {product} from order {order} but the site will not make the label."],
    ),
    "shipping_delay": (
        ["El pedido {order} tenía que llegar hace {days} días y sigue sin aparecer."],
        ["Order {order} was due {days} days ago and has still not arrived."],
    ),
    "damaged_missing": (
        ["El paquete del pedido {order} llegó aplastado y {product} está roto."],
        ["The parcel for order {order} arrived crushed and {product} inside is broken."],
    ),
    "technical_problem": (
        [
            "{product} deja de funcionar a los pocos minutos de encenderlo.",
            "No puedo entrar en mi cuenta: la web da un error al iniciar sesión.",
        ],
        [
            "{product} stops working a few minutes after I switch it on.",
            "I cannot sign in to my account: the website shows an error.",
        ],
    ),
    "staff_conduct": (
        ["La persona que me atendió en la tienda fue muy maleducada y no quiso ayudarme."],
        ["The person who served me in the shop was very rude and would not help me."],
    ),
    "other": (
        ["Me gustaría poder elegir una franja horaria para la entrega."],
        ["It would help to be able to choose a delivery time slot."],
    ),
}
WISHES = (
    ["Que me devolváis el dinero.", "Un reemplazo.", "Una disculpa.", ""],
    ["A refund, please.", "A replacement.", "An apology.", ""],
)
FOLLOW_UPS = (
    [
        "Os adjunto el número de seguimiento: {tracking}.",
        "¿Hay alguna novedad sobre mi caso?",
        "Os envío la foto del producto y la factura.",
        "Sigo esperando una respuesta, por favor.",
    ],
    [
        "Here is the tracking number: {tracking}.",
        "Is there any news on my case?",
        "Attached are the photo and the invoice.",
        "I am still waiting for an answer, please.",
    ],
)
REPLIES = (
    [
        "Hola, {name}:\n\nGracias por escribirnos. Estamos revisando tu caso y te responderemos "
        "lo antes posible.\n\nUn saludo.",
        "Hola, {name}:\n\nPara seguir necesitamos una foto del producto y la factura del "
        "pedido.\n\nUn saludo.",
        "Hola, {name}:\n\nHemos ordenado el reembolso; lo verás en 5 a 10 días hábiles.\n\n"
        "Sentimos las molestias.",
    ],
    [
        "Hello {name},\n\nThank you for getting in touch. We are looking into your case and will "
        "answer as soon as we can.\n\nKind regards.",
        "Hello {name},\n\nTo carry on we need a photo of the product and the invoice.\n\n"
        "Kind regards.",
        "Hello {name},\n\nWe have issued the refund; it should reach you within 5 to 10 business "
        "days.\n\nWe are sorry for the trouble.",
    ],
)
NOTES = [
    "Revisado con el almacén: el pedido salió con retraso.",
    "Pendiente de confirmar el abono con contabilidad.",
    "Cliente recurrente, tratar con prioridad.",
]
MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "octubre", "noviembre"]

DAY = 86400.0

# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Timing:
    """One filter measured on one surface (the queue page or the API) at one size."""

    db: str
    cases: int
    surface: str  # "page" or "api"
    filter: str
    page: int
    target: bool
    requests: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0
    rows: int = 0  # rows (items) on the measured page
    statuses: dict[str, int] = field(default_factory=dict)
    queries: int | None = None  # SQL statements behind one request, counted in-process
    sql_ms: float | None = None  # their time in the database driver, in-process
    in_process_ms: float | None = None  # the whole request in-process, without HTTP
    other_pct: float = 0.0  # share of the machine other processes used meanwhile
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.requests > 0 and set(self.statuses) == {"200"}


@dataclass
class Fill:
    db: str
    cases: int
    added: int
    customers_added: int
    messages_added: int
    seconds: float
    analyze_seconds: float
    open_cases: int = 0
    overdue_cases: int = 0
    bench_agent_open: int = 0
    database_mb: float = 0.0
    code: str = ""  # the commit the server ran at this size ("+changes": a modified checkout)


# ---------------------------------------------------------------------------------------------
# Django, in this process, on the benchmark's database


def start_django(db: str, home: Path, pg_url: str | None) -> None:
    os.environ["CONCILIA_HOME"] = str(home)
    # The agents' API calls all carry the benchmark's one token: its rate limit is off.
    os.environ["CONCILIA_TOKEN_RATE"] = "0"  # noqa: S105 - a rate, not a secret
    os.environ["DJANGO_SETTINGS_MODULE"] = "concilia.settings"
    if pg_url:
        os.environ["DATABASE_URL"] = pg_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != ("postgresql" if db == "postgres" else "sqlite"):
        raise BenchError(f"expected {db}, Django connected to {connection.vendor}")


def set_up_company() -> None:
    """The demo company (teams, agents, calendar, rules), plus a billing team and more agents."""
    from django.contrib.auth.models import Group, Permission
    from django.core.management import call_command
    from django.db import transaction

    from concilia.accounts.models import ROLE_GROUPS, Role, Team, User
    from concilia.cases.models import AssignmentRule, Category, Strategy
    from concilia.core.models import BusinessCalendar
    from concilia.intake.management.commands.demo import DEMO_PASSWORD

    call_command("demo", stdout=io.StringIO())  # migrates; does nothing the second time
    with transaction.atomic():
        calendar = BusinessCalendar.objects.order_by("pk").first()
        teams = {}
        for code, name_es, name_en in TEAMS:
            team = Team.objects.filter(code=code).first()
            if team is None:
                team = Team(code=code, name_es=name_es, name_en=name_en, calendar=calendar)
                team.save()
            teams[code] = team
        if not AssignmentRule.objects.filter(team=teams["billing"]).exists():
            for position, code in enumerate(["billing_error", "refund"], start=1):
                AssignmentRule.objects.create(
                    name=f"{code} → Facturación",
                    position=position,
                    category=Category.objects.get(code=code),
                    team=teams["billing"],
                    strategy=Strategy.ROUND_ROBIN,
                )
        agent_group = Group.objects.get(name=ROLE_GROUPS[Role.AGENT][0])
        permissions = Permission.objects.filter(
            content_type__app_label="cases", codename__in=["view_case", "change_case"]
        )
        for username, first_name, team_code, _share in AGENTS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(
                    username,
                    f"{username}@concilia.localhost",
                    DEMO_PASSWORD,
                    first_name=first_name,
                    is_staff=True,
                )
                user.user_permissions.add(*permissions)
            user.groups.add(agent_group, teams[team_code].group)


# A customer's contact data is stored encrypted, with the keyed hashes that find it
# (concilia.core.fields): written here as the model's save() writes them.
SEALED_CUSTOMER_COLUMNS = ["name", "email", "phone", "email_index", "name_words"]


def sealed_text(value: str) -> str:
    """A case's or message's text as its encrypted field stores it."""
    from concilia.core import crypto

    return crypto.encrypt_text(value) if value else value


def text_hashes(texts: list[str]) -> set[int]:
    from concilia.cases.search import text_hashes as hashes

    return hashes(texts)


def insert_grams(rows: list[tuple[int, int]]) -> None:
    """The cases' blind text index (concilia.cases.search), as Case.save and Message.save write it."""
    from django.db import connection

    if not rows:
        return
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy("COPY cases_textgram (case_id, gram) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    else:
        raw.executemany("INSERT INTO cases_textgram (case_id, gram) VALUES (?, ?)", rows)


def sealed(name: str, email: str, phone: str) -> tuple[str, ...]:
    from concilia.customers.models import Customer

    customer = Customer(name=name, email=email, phone=phone)
    fields = [Customer._meta.get_field(column) for column in SEALED_CUSTOMER_COLUMNS]
    return tuple(f.get_prep_value(f.pre_save(customer, add=True)) for f in fields)


class Table:
    """Bulk inserts into one model's table: the columns the fill sets, then every other column
    with its field's default (so that a new column with a default does not break the fill)."""

    def __init__(self, model: Any, given: list[str]):
        from django.db import connection, models

        fields = {f.attname: f for f in model._meta.concrete_fields}
        unknown = [name for name in given if name not in fields]
        if unknown:
            raise BenchError(
                f"{model.__name__} has no field(s) {unknown}: update bench/helpdesk.py"
            )
        rest = [f for name, f in fields.items() if name not in given]
        self.constants: tuple[Any, ...] = ()
        for f in rest:
            if f.has_default():
                value = f.get_db_prep_save(f.get_default(), connection)
            elif f.null:
                value = None
            elif isinstance(f, models.CharField | models.TextField):
                value = ""
            else:
                raise BenchError(
                    f"{model.__name__}.{f.name} is required and has no default: "
                    "teach bench/helpdesk.py what to put there"
                )
            self.constants += (value,)
        quote = connection.ops.quote_name
        self.table = quote(model._meta.db_table)
        self.columns = ", ".join(quote(fields[name].column) for name in given)
        if rest:
            self.columns += ", " + ", ".join(quote(f.column) for f in rest)
        self.width = len(given) + len(rest)

    def insert(self, rows: list[tuple]) -> None:
        from django.db import connection

        if not rows:
            return
        rows = [row + self.constants for row in rows] if self.constants else rows
        connection.ensure_connection()
        raw = connection.connection
        if connection.vendor == "postgresql":
            with raw.cursor() as cursor:
                statement = f"COPY {self.table} ({self.columns}) FROM STDIN"
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            marks = ", ".join("?" * self.width)
            statement = f"INSERT INTO {self.table} ({self.columns}) VALUES ({marks})"  # noqa: S608 - names from the models
            raw.executemany(statement, rows)


def _pick(rng: random.Random, choices: tuple[list[str], list[int]], n: int) -> list[str]:
    return rng.choices(choices[0], weights=choices[1], k=n)


def _cases_per_customer(rng: random.Random) -> int:
    """About 3 on average: most people write once, a few dozens of times."""
    draw = rng.random()
    if draw < 0.60:
        return 1
    if draw < 0.80:
        return rng.randint(2, 3)
    if draw < 0.95:
        return rng.randint(4, 8)
    if draw < 0.995:
        return rng.randint(9, 20)
    return rng.randint(21, 200)


def reserve_references(year: int, count: int) -> int:
    """Take `count` consecutive reference numbers of `year` from the application's own counter,
    so that cases opened later through the application never collide with the filled ones."""
    from django.db import connection

    from concilia.core.models import ReferenceSequence
    from concilia.core.references import PREFIX

    first = ReferenceSequence.next_number(PREFIX, year)
    last = first + count - 1
    if connection.vendor == "postgresql":
        # The sequence ReferenceSequence.next_number has just made (concilia.core.models).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(%s, %s)", [f"concilia_reference_{PREFIX.lower()}_{year}", last]
            )
    else:
        ReferenceSequence.objects.filter(prefix=PREFIX, year=year).update(last=last)
    return first


def fill(target: int, seed: int, chunk: int = 50_000) -> tuple[int, int, int]:
    """Add cases (with their customers and messages) until the database holds `target` cases.

    Returns (cases, customers, messages) added. Cases are spread over the last two years with a
    growing intake; most are closed, recent ones are often still open, some are overdue.
    """
    from zoneinfo import ZoneInfo

    from django.conf import settings
    from django.db import connection, transaction
    from django.db.models import Max
    from django.utils import timezone

    from concilia.accounts.models import Team, User
    from concilia.cases.models import Case, Category, Message
    from concilia.core.references import format_reference
    from concilia.customers.models import Customer

    existing = Case.objects.count()
    wanted = target - existing
    if wanted <= 0:
        return 0, 0, 0
    rng = random.Random(seed * 1_000_003 + existing)
    sqlite = connection.vendor == "sqlite"
    local = ZoneInfo(settings.TIME_ZONE)
    utc = dt.UTC

    def when(epoch: float) -> Any:
        moment = dt.datetime.fromtimestamp(epoch, utc)
        return moment.replace(tzinfo=None).isoformat(" ") if sqlite else moment

    def day(epoch: float) -> Any:
        date = dt.datetime.fromtimestamp(epoch, utc).date()
        return date.isoformat() if sqlite else date

    def money(value: Decimal | None) -> Any:
        return str(value) if sqlite and value is not None else value

    teams = {t.code: t.pk for t in Team.objects.all()}
    people = {u.username: u.pk for u in User.objects.filter(username__in=[a[0] for a in AGENTS])}
    team_agents: dict[str, tuple[list[int], list[int]]] = {}
    for username, _first, team_code, share in AGENTS:
        ids, weights = team_agents.setdefault(team_code, ([], []))
        ids.append(people[username])
        weights.append(share)
    categories = {c.code: (c.pk, c.response_days) for c in Category.objects.all()}
    codes = list(CATEGORIES)
    code_weights = [CATEGORIES[c][1] for c in codes]

    now = timezone.now().timestamp()
    span = YEARS_OF_HISTORY * 365 * DAY
    # More cases lately than two years ago (the business grows): age = span x u^1.25.
    created = sorted(now - span * rng.random() ** 1.25 for _ in range(wanted))

    # Customers: about one per three cases, some with many cases.
    counts: list[int] = []
    total = 0
    while total < wanted:
        counts.append(_cases_per_customer(rng))
        total += counts[-1]
    counts[-1] -= total - wanted
    owners = [index for index, count in enumerate(counts) for _ in range(count)]
    rng.shuffle(owners)
    first_seen = [now] * len(counts)
    for moment, owner in zip(created, owners, strict=True):
        first_seen[owner] = min(first_seen[owner], moment)
    customer_base = (Customer.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    customer_lang: list[int] = []  # 0 Spanish, 1 English
    customer_name: list[str] = []
    customer_rows = []
    for index in range(len(counts)):
        english = rng.random() < 0.25
        first = rng.choice(FIRST_EN if english else FIRST_ES)
        last = rng.choice(LAST_EN if english else LAST_ES)
        name = f"{first} {last}"
        email = f"{first}.{last}.{customer_base + index}@{rng.choice(DOMAINS)}"
        email = email.lower().translate(ASCII)
        phone = f"+34 6{rng.randint(10_000_000, 99_999_999)}" if rng.random() < 0.4 else ""
        seen = when(first_seen[index])
        customer_lang.append(int(english))
        customer_name.append(first)
        customer_rows.append(
            (
                customer_base + index,
                *sealed(name, email, phone),
                "en" if english else "es",
                seen,
                seen,
            )
        )
    customers = Table(
        Customer,
        ["id", *SEALED_CUSTOMER_COLUMNS, "language", "created_at", "updated_at"],
    )
    cases = Table(
        Case,
        [
            "id", "reference", "kind", "category_id", "channel", "status", "outcome",
            "priority", "customer_id", "language", "subject", "description",
            "desired_resolution", "order_number", "purchase_date", "amount", "currency",
            "team_id", "assignee_id", "deadline", "first_response_due", "sla_paused_at",
            "sla_alerted", "sla_alert_due_at", "last_customer_message_at", "last_activity_at",
            "version", "created_at", "updated_at", "first_response_at", "resolved_at",
            "closed_at",
        ],
    )  # fmt: skip
    messages = Table(
        Message,
        ["id", "case_id", "author_kind", "author_user_id", "body", "internal", "created_at"],
    )

    # Reference numbers: consecutive within each year, in the order the cases came in.
    years = [dt.datetime.fromtimestamp(moment, local).year for moment in created]
    next_number = {}
    with transaction.atomic():
        for year, count in sorted(Counter(years).items()):
            next_number[year] = reserve_references(year, count)
        for start in range(0, len(customer_rows), chunk):
            customers.insert(customer_rows[start : start + chunk])
    del customer_rows

    case_base = (Case.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    message_id = (Message.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    messages_added = 0
    started = time.monotonic()
    kinds = _pick(rng, KINDS, wanted)
    channels = _pick(rng, CHANNELS, wanted)
    priorities = _pick(rng, PRIORITIES, wanted)
    category_codes = rng.choices(codes, weights=code_weights, k=wanted)
    for start in range(0, wanted, chunk):
        case_rows = []
        message_rows = []
        gram_rows: list[tuple[int, int]] = []
        for i in range(start, min(start + chunk, wanted)):
            t = created[i]
            owner = owners[i]
            english = customer_lang[owner]
            code = category_codes[i]
            category_id, response_days = categories[code]
            age = (now - t) / DAY
            # Recent cases are often still open; old ones nearly always closed.
            p_closed = 0.2 if age < 7 else 0.65 if age < 30 else 0.95 if age < 90 else 0.993
            closed = rng.random() < p_closed
            team_code: str | None = CATEGORIES[code][0] if rng.random() > 0.02 else None
            assignee = None
            if team_code is not None and rng.random() < (0.97 if closed else 0.85):
                ids, weights = team_agents[team_code]
                assignee = rng.choices(ids, weights=weights)[0]
            responder = assignee or people["agent"]

            number = next_number[years[i]]
            next_number[years[i]] = number + 1
            reference = format_reference(years[i], number)
            product = rng.choice(PRODUCTS_EN if english else PRODUCTS_ES)
            order = f"{'ORD' if english else 'PED'}-{rng.randint(10_000, 99_999)}"
            amount = (
                Decimal(rng.randint(500, 50_000)) / 100
                if code in ("billing_error", "refund", "return")
                else None
            )
            description = rng.choice(TEXTS[code][english]).format(
                month=rng.choice(MONTHS),
                amount=amount or "",
                order=order,
                product=product,
                days=rng.randint(3, 30),
            )
            if rng.random() < 0.3:
                description += "\n" + rng.choice(FOLLOW_UPS[english][1:])
            subject = description.splitlines()[0][:120]

            # The thread: first answer, follow-ups, closing answer, internal notes.
            # Closed within days, never at the fill's own instant (ties would skew keyset pages).
            end = t + min(age * rng.random(), rng.expovariate(1 / 5.0)) * DAY if closed else now
            first_response = None
            if closed or (age > 0.5 and rng.random() < 0.7):
                first_response = t + min(end - t, rng.expovariate(1 / 0.8) * DAY) * 0.9
            thread: list[tuple[float, str, int | None, str, bool]] = []
            if first_response is not None:
                thread.append(
                    (first_response, "staff", responder,
                     rng.choice(REPLIES[english][:2]).format(name=customer_name[owner]), False)
                )  # fmt: skip
            if closed:
                status = "closed"
                if first_response is not None and rng.random() < 0.35:
                    moment = first_response + (end - first_response) * rng.random()
                    thread.append(
                        (moment, "customer", None,
                         rng.choice(FOLLOW_UPS[english]).format(tracking=f"1Z{rng.randint(10**9, 10**10)}"), False)
                    )  # fmt: skip
                if rng.random() < 0.7:
                    thread.append(
                        (end, "staff", responder,
                         REPLIES[english][2].format(name=customer_name[owner]), False)
                    )  # fmt: skip
            elif first_response is None:
                status = "not_started"
                if rng.random() < 0.15:
                    moment = t + (now - t) * rng.random()
                    thread.append((moment, "customer", None, FOLLOW_UPS[english][1], False))
            elif rng.random() < 0.35:
                status = "pending_customer"
            else:
                status = "pending_agent"
                moment = first_response + (now - first_response) * rng.random()
                thread.append(
                    (moment, "customer", None,
                     rng.choice(FOLLOW_UPS[english]).format(tracking=f"1Z{rng.randint(10**9, 10**10)}"), False)
                )  # fmt: skip
            if rng.random() < 0.1:
                thread.append(
                    (t + (end - t) * rng.random(), "staff", responder, rng.choice(NOTES), True)
                )
            thread.sort()

            deadline = t + response_days * 1.4 * DAY
            paused_at = None
            if status == "pending_customer":
                paused_at = max(m[0] for m in thread if m[1] == "staff")
                deadline += (now - paused_at) * rng.random()
            # The next SLA warning, as sla.set_deadlines and the sweep keep it: at 80% of the time,
            # then at the deadline, then none. (next_alert_at is for agents' alerts: none here.)
            next_alert = None
            alerted = ""
            if closed:
                alerted = "breached" if end > deadline else ""
            else:
                at_risk = t + 0.8 * (deadline - t)
                if at_risk > now:
                    next_alert = at_risk
                elif deadline > now:
                    next_alert, alerted = deadline, "at_risk"
                else:
                    alerted = "breached"
            last_customer = max([t] + [m[0] for m in thread if m[1] == "customer"])
            last_activity = max([t, end if closed else t] + [m[0] for m in thread])
            outcome = _pick(rng, OUTCOMES, 1)[0] if closed else ""
            case_id = case_base + i
            case_rows.append(
                (
                    case_id, reference, kinds[i], category_id, channels[i], status, outcome,
                    priorities[i], customer_base + owner, "en" if english else "es",
                    sealed_text(subject), sealed_text(description), rng.choice(WISHES[english]),
                    order if code not in ("staff_conduct", "technical_problem", "other") else "",
                    day(t - rng.randint(1, 60) * DAY) if amount is not None else None,
                    money(amount), "EUR",
                    teams[team_code] if team_code else None, assignee, when(deadline),
                    when(t + 1.4 * DAY), when(paused_at) if paused_at else None, alerted,
                    when(next_alert) if next_alert else None, when(last_customer),
                    when(last_activity), 1 + len(thread) + closed + (assignee is not None),
                    when(t), when(last_activity),
                    when(first_response) if first_response is not None else None,
                    when(end) if closed and outcome in ("resolved", "partially_resolved") else None,
                    when(end) if closed else None,
                )
            )  # fmt: skip
            for moment, author_kind, author, body, internal in thread:
                message_rows.append(
                    (message_id, case_id, author_kind, author, sealed_text(body), internal,
                     when(moment))
                )  # fmt: skip
                message_id += 1
            texts = [subject, description, *(line[3] for line in thread)]
            gram_rows += [(case_id, gram) for gram in text_hashes(texts)]
        with transaction.atomic():
            cases.insert(case_rows)
            messages.insert(message_rows)
            insert_grams(gram_rows)
        messages_added += len(message_rows)
        done = min(start + chunk, wanted)
        rate = done / max(time.monotonic() - started, 1e-6)
        print(
            f"\r  filled {done:,}/{wanted:,} cases ({rate:,.0f}/s)",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    if not sqlite:  # COPY with explicit ids leaves the identity sequences behind
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(
                no_style(), [Customer, Case, Message]
            ):
                cursor.execute(statement)
    return wanted, len(counts), messages_added


def analyze() -> float:
    """Fresh planner statistics (and, on PostgreSQL, a vacuumed visibility map)."""
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in ("customers_customer", "cases_case", "cases_message", "cases_textgram"):
                cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute("ANALYZE")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.monotonic() - started


def database_mb() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0] / 2**20
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_size")
        return pages * cursor.fetchone()[0] / 2**20


def describe_data(fill_record: Fill) -> None:
    from django.utils import timezone

    from concilia.accounts.models import User
    from concilia.cases.models import Case

    bench = User.objects.get(username=BENCH_USERNAME)
    fill_record.open_cases = Case.objects.open().count()
    fill_record.overdue_cases = Case.objects.open().filter(deadline__lt=timezone.now()).count()
    fill_record.bench_agent_open = Case.objects.open().filter(assignee=bench).count()
    fill_record.database_mb = database_mb()


def customer_emails(rng: random.Random, how_many: int = 20) -> list[str]:
    """Emails of customers with 3-12 cases in the benchmark agent's team (what an agent looks up)."""
    from django.db.models import Count

    from concilia.accounts.models import Team
    from concilia.cases.models import Case

    team = Team.objects.get(code="customer-care")
    rows = list(
        Case.objects.filter(team=team)
        .values("customer__email")
        .annotate(n=Count("id"))
        .filter(n__gte=3, n__lte=12)
        .order_by("customer__email")
        .values_list("customer__email", flat=True)[:2000]
    )
    if not rows:  # a tiny database: whoever has a case
        rows = list(
            Case.objects.filter(team=team).values_list("customer__email", flat=True)[:how_many]
        )
    return sorted(rng.sample(rows, min(how_many, len(rows))))


def issue_token() -> str:
    from concilia.accounts.models import ApiToken, User

    _, raw = ApiToken.issue(
        user=User.objects.get(username=BENCH_USERNAME), name="helpdesk benchmark"
    )
    return raw


# ---------------------------------------------------------------------------------------------
# In-process: SQL statements per page, and the plan of the main one


def _main_sql(captured: list[tuple[str, Any]]) -> tuple[str, Any] | None:
    """The statement that reads the page's cases (FROM cases_case ... ORDER BY ... LIMIT)."""
    pages = [
        (sql, params)
        for sql, params in captured
        if 'FROM "cases_case"' in sql and "LIMIT" in sql and "ORDER BY" in sql
    ]
    return max(pages, key=lambda item: len(item[0])) if pages else None


def _params_for(flt: Filter, emails: list[str], index: int) -> dict[str, str]:
    params = dict(flt.params)
    if params.get("email") == "<customer>":
        params["email"] = emails[index % len(emails)] if emails else "nobody@example.com"
    return params


@dataclass
class Profile:
    """One filter's page served in this process (Django's test client), warm: median of 3."""

    queries: int
    sql_ms: float  # time inside the database driver, all statements
    total_ms: float  # the whole request in-process (no HTTP server, no network)


def in_process(
    filters: list[Filter], emails: list[str], token: str, with_plans: bool
) -> tuple[dict[tuple[str, str], Profile], dict[tuple[str, str], str]]:
    """Statements, SQL time and plans behind each filter's page, through Django's test client."""
    from statistics import median

    from django.db import connection
    from django.test import Client

    from concilia.accounts.models import User

    user = User.objects.get(username=BENCH_USERNAME)
    browser = Client(HTTP_HOST=HOST)
    browser.force_login(user)
    api = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {token}")
    profiles: dict[tuple[str, str], Profile] = {}
    plans: dict[tuple[str, str], str] = {}
    for surface, client, path in (
        ("page", browser, "/helpdesk/"),
        ("api", api, "/api/v1/cases"),
    ):
        for flt in filters:
            params = _params_for(flt, emails, 0)
            after = ""
            for _ in range(flt.page - 1):  # walk to the page through its cursors
                response = client.get(path, {**params, **_extra(surface, after)})
                after = _next_cursor(surface, response.status_code, response.content)
                if not after:
                    break
            if flt.page > 1 and not after:
                continue
            query = {**params, **_extra(surface, after)}
            if client.get(path, query).status_code != 200:  # also warms the caches
                continue
            runs: list[tuple[list[tuple[str, Any]], float, float]] = []
            for _ in range(3):
                captured: list[tuple[str, Any]] = []
                spent = [0.0]

                def timed(execute, sql, params_, many, context, captured=captured, spent=spent):
                    captured.append((sql, params_))
                    started = time.perf_counter()
                    try:
                        return execute(sql, params_, many, context)
                    finally:
                        spent[0] += time.perf_counter() - started

                started = time.perf_counter()
                with connection.execute_wrapper(timed):
                    client.get(path, query)
                runs.append((captured, spent[0] * 1000, (time.perf_counter() - started) * 1000))
            profiles[(surface, flt.name)] = Profile(
                queries=len(runs[0][0]),
                sql_ms=median(run[1] for run in runs),
                total_ms=median(run[2] for run in runs),
            )
            main = _main_sql(runs[0][0])
            if with_plans and main is not None:
                plans[(surface, flt.name)] = explain(*main)
    return profiles, plans


def explain(sql: str, params: Any) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            rows = cursor.fetchall()
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _unused, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            plan = "\n".join(lines)
    return f"{_interpolate(sql, params)}\n{plan}"


def _interpolate(sql: str, params: Any) -> str:
    """The statement with its parameters in place, to paste into psql or sqlite3."""
    from django.db import connection

    try:
        if connection.vendor == "postgresql":
            import psycopg

            text = psycopg.ClientCursor(connection.connection).mogrify(sql, params)
            return text.decode() if isinstance(text, bytes) else text
        return connection.ops.last_executed_query(None, sql, params)
    except Exception:  # only for display: the plan matters, not the pretty statement
        return sql


def scans(plan: str) -> list[str]:
    """Warnings about a plan: whole-table scans, and sorts of every matching row (harmless when
    an index has already narrowed the rows to a few, as for one customer's cases)."""
    found = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip()
        table = re.match(
            r"(?:Parallel )?Seq Scan on (cases_case|cases_message|customers_customer)\b"
            r"|SCAN (cases_case|cases_message|customers_customer)$",
            text,
        )
        if table:
            found.append(f"full scan of {table.group(1) or table.group(2)}")
        elif "USE TEMP B-TREE FOR ORDER BY" in text or re.match(r"Sort\b", text):
            found.append("sorts every matching row")
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------------------------------------
# The server and a signed-in browser


class Server:
    def __init__(
        self,
        home: Path,
        workers: int | None,
        start_timeout: float,
        env: dict[str, str] | None = None,
    ):
        self.home = home
        self.env = env  # variables to set on top of this process's environment
        self.port = free_port()
        self.workers = workers
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.log_path = home / "serve.log"

    def start(self) -> None:
        command = [sys.executable, "-m", "concilia", "serve", "--host", HOST]
        command += ["--port", str(self.port)]
        if self.workers:
            command += ["--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **(self.env or {})},
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"`concilia serve` exited:\n{self.log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                connection.request("GET", "/helpdesk/login/")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
            time.sleep(0.25)
        raise BenchError(f"the server did not answer in {self.start_timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
            self.process.wait(timeout=10)


class Browser:
    """One keep-alive connection with cookies: a person's browser, minus the rendering."""

    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.port = port
        self.headers = headers or {}
        self.cookies: dict[str, str] = {}
        self.connection = http.client.HTTPConnection(HOST, port, timeout=300)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        sent = {**self.headers, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=sent)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(HOST, self.port, timeout=300)
                if attempt:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        return response.status, response.headers, data

    def sign_in(self, username: str, password: str) -> None:
        status, _, page = self.request("GET", "/helpdesk/login/")
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or not match:
            raise BenchError(f"no sign-in form at /helpdesk/login/ ({status})")
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": match.group(1).decode(),
                "username": username,
                "password": password,
                "next": "/helpdesk/",
            }
        ).encode()
        status, _headers, _ = self.request(
            "POST",
            "/helpdesk/login/",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise BenchError(f"signing in as {username} failed ({status})")


def _extra(surface: str, after: str) -> dict[str, str]:
    extra = {"limit": str(PAGE_SIZE)} if surface == "api" else {}
    if after:
        extra["after"] = after
    return extra


def _next_cursor(surface: str, status: int, body: bytes) -> str:
    if status != 200:
        return ""
    if surface == "api":
        try:
            return json.loads(body).get("next") or ""
        except ValueError:
            return ""
    match = re.search(rb'href="([^"]*)" rel="next"', body)
    if not match:
        return ""
    query = urllib.parse.urlsplit(html.unescape(match.group(1).decode())).query
    return urllib.parse.parse_qs(query).get("after", [""])[0]


def _rows(surface: str, status: int, body: bytes) -> int:
    if status != 200:
        return 0
    if surface == "api":
        try:
            return len(json.loads(body).get("items") or [])
        except ValueError:
            return 0
    return body.count(b'href="/helpdesk/cases/')


def measure(
    browser: Browser,
    surface: str,
    flt: Filter,
    emails: list[str],
    args: argparse.Namespace,
    pgid: int,
) -> Timing:
    """Sequential requests of one filter's page: warm-up, then up to --requests timed ones."""
    path = "/helpdesk/" if surface == "page" else "/api/v1/cases"
    timing = Timing(
        db="", cases=0, surface=surface, filter=flt.name, page=flt.page, target=flt.target
    )
    after = ""
    for _ in range(flt.page - 1):
        params = {**_params_for(flt, emails, 0), **_extra(surface, after)}
        status, _, body = browser.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
        after = _next_cursor(surface, status, body)
        if not after:
            timing.note = f"no page {flt.page} (status {status})"
            return timing

    def one(index: int) -> tuple[int, float, bytes]:
        params = {**_params_for(flt, emails, index), **_extra(surface, after)}
        started = time.perf_counter()
        status, _, body = browser.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
        return status, (time.perf_counter() - started) * 1000, body

    warm_until = time.monotonic() + args.budget / 4
    for index in range(args.warmup):
        one(index)
        if time.monotonic() > warm_until:
            break
    latencies: list[float] = []
    statuses: Counter = Counter()
    rows = 0
    cpu_before = server_cpu(pgid)
    busy_before = machine_busy()
    own_before = time.process_time()
    stop_at = time.monotonic() + args.budget
    for index in range(args.requests):
        status, elapsed, body = one(index)
        statuses[str(status)] += 1
        latencies.append(elapsed)
        if index == 0:
            rows = _rows(surface, status, body)
        if time.monotonic() > stop_at and len(latencies) >= args.min_requests:
            timing.note = f"stopped after {args.budget:.0f}s"
            break
    busy_after = machine_busy()
    used = sum(cpu_delta(cpu_before, server_cpu(pgid)).values())
    used += time.process_time() - own_before
    busy = (busy_after[0] - busy_before[0]) / CLK_TCK
    capacity = (busy_after[1] - busy_before[1]) / CLK_TCK
    latencies.sort()
    timing.requests = len(latencies)
    timing.p50_ms = percentile(latencies, 50)
    timing.p95_ms = percentile(latencies, 95)
    timing.max_ms = latencies[-1]
    timing.rows = rows
    timing.statuses = dict(statuses)
    timing.other_pct = 100 * max(0.0, busy - used) / capacity if capacity else 0.0
    return timing


# ---------------------------------------------------------------------------------------------
# Databases


def pg_admin(pg_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def pg_exists(pg_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(f"{pg_url.rstrip('/')}/postgres", autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


def environment(args: argparse.Namespace) -> dict[str, str]:
    import platform
    import sqlite3

    import django

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    found = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 2**20:.1f} GiB RAM",
        "python / django": f"{platform.python_version()} / {django.get_version()}",
        "database": args.db,
        "code": code_version(),
    }
    if args.db == "sqlite":
        found["sqlite"] = sqlite3.sqlite_version
    else:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
            cursor.execute("SHOW shared_buffers")
            found["postgresql"] = f"{version} (shared_buffers {cursor.fetchone()[0]})"
    return found


# ---------------------------------------------------------------------------------------------
# Report


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def table(timings: list[Timing], api_available: bool, disturbed_pct: float) -> str:
    by_key = {(t.cases, t.surface, t.filter): t for t in timings}
    sizes = sorted({t.cases for t in timings})
    lines = [
        "| cases | filter | page p50 / p95 ms | rows | statements (SQL time) | "
        "API p50 / p95 ms | items | statements (SQL time) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        for flt in FILTERS:
            page = by_key.get((size, "page", flt.name))
            api = by_key.get((size, "api", flt.name))
            if page is None and api is None:
                continue

            def cells(t: Timing | None, available: bool = True) -> str:
                if t is None or not available:
                    return "not available | - | -"
                if not t.requests:
                    return f"{t.note or 'no data'} | - | -"
                flag = " ⚠" if t.other_pct > disturbed_pct else ""
                sql = "-"
                if t.queries is not None:
                    sql = f"{t.queries} ({_ms(t.sql_ms or 0)} ms)"
                return f"{_ms(t.p50_ms)} / {_ms(t.p95_ms)}{flag} | {t.rows} | {sql}"

            lines.append(f"| {size:,} | {flt.name} | {cells(page)} | {cells(api, api_available)} |")
    return "\n".join(lines)


def verdicts(timings: list[Timing], factor: float) -> tuple[str, bool]:
    sizes = sorted({t.cases for t in timings})
    if len(sizes) < 2:
        return "(one size only: no ratio)", True
    small, large = sizes[0], sizes[-1]
    by_key = {(t.cases, t.surface, t.filter): t for t in timings}
    lines = [
        f"| surface | filter | p95 at {small:,} | p95 at {large:,} | ratio | ≤ {factor}x ? |",
        "|---|---|---|---|---|---|",
    ]
    holds = True
    for surface in ("page", "api"):
        for flt in FILTERS:
            a, b = by_key.get((small, surface, flt.name)), by_key.get((large, surface, flt.name))
            if a is None or b is None or not a.requests or not b.requests:
                continue
            ratio = b.p95_ms / a.p95_ms if a.p95_ms else float("inf")
            ok = ratio <= factor
            if flt.target:
                holds = holds and ok
            verdict = (
                ("yes" if ok else "**no**")
                if flt.target
                else ("(exempt)" if not ok else "yes (exempt)")
            )
            lines.append(
                f"| {surface} | {flt.name} | {_ms(a.p95_ms)} | {_ms(b.p95_ms)} | "
                f"{ratio:.2f} | {verdict} |"
            )
    return "\n".join(lines), holds


# ---------------------------------------------------------------------------------------------


def measure_steadily(
    client: Browser,
    surface: str,
    flt: Filter,
    emails: list[str],
    args: argparse.Namespace,
    pgid: int,
) -> Timing:
    """measure(), again when other programs disturbed it; the least disturbed run counts."""
    runs: list[Timing] = []
    for attempt in range(args.retry_disturbed + 1):
        if args.quiet_wait:
            wait_for_quiet(args.quiet_wait)
        runs.append(measure(client, surface, flt, emails, args, pgid))
        if runs[-1].other_pct <= args.disturbed_pct or not runs[-1].requests:
            break
        if attempt < args.retry_disturbed:
            print(f"  {surface} {flt.name}: disturbed ({runs[-1].other_pct:.0f}% other), again")
    return min(runs, key=lambda run: run.other_pct)


def parse_sizes(text: str) -> list[int]:
    values = sorted({int(v.replace("_", "")) for v in text.split(",") if v.strip()})
    if not values or values[0] < 100:
        raise argparse.ArgumentTypeError("sizes are case counts of at least 100, e.g. 10000,100000")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[10_000, 100_000, 1_000_000], help="cases, growing"
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per filter")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first")
    parser.add_argument(
        "--budget",
        type=float,
        default=90,
        help="seconds per filter at most (slow filters stop early, after --min-requests)",
    )
    parser.add_argument("--min-requests", type=int, default=10)
    parser.add_argument(
        "--retry-disturbed",
        type=int,
        default=2,
        metavar="N",
        help="measure a filter again (up to N times) when other programs used more than "
        "--disturbed-pct of the machine meanwhile",
    )
    parser.add_argument(
        "--disturbed-pct",
        type=float,
        default=25.0,
        help="share of the 2 cores other programs may use during a measurement (default 25%%: "
        "the sequential client and the server need one core)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="seconds to wait at most for an idle machine before each filter",
    )
    parser.add_argument("--workers", type=int, default=None, help="`concilia serve --workers`")
    parser.add_argument("--home", type=Path, help="CONCILIA_HOME (default: a folder in /tmp)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-db", default="bench_helpdesk")
    parser.add_argument("--keep", action="store_true", help="reuse a filled database, keep it")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-api", action="store_true", help="time the queue page only")
    parser.add_argument("--explain-all", action="store_true", help="plans at every size")
    parser.add_argument("--factor", type=float, default=1.5, help="the target ratio")
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.min_requests < 1:
        parser.error("--requests and --min-requests must be positive")
    if args.pg_db.lower() in PROTECTED_DATABASES or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", args.pg_db
    ):
        parser.error(f"refusing to use {args.pg_db!r} as the benchmark database")

    scratch = Path(tempfile.gettempdir()) / f"concilia-helpdesk-bench-{args.db}"
    home = (args.home or scratch).resolve()
    if not args.keep and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    pg_url = None
    if args.db == "postgres":
        pg_url = f"{args.pg_url.rstrip('/')}/{args.pg_db}"
        try:
            exists = pg_exists(args.pg_url, args.pg_db)
            if exists and not args.keep:
                pg_admin(args.pg_url, f'DROP DATABASE "{args.pg_db}" WITH (FORCE)')
            if not exists or not args.keep:
                pg_admin(args.pg_url, f'CREATE DATABASE "{args.pg_db}"')
        except Exception as exc:  # psycopg's errors: the server is not there, or refuses
            print(f"PostgreSQL at {args.pg_url}: {exc}", file=sys.stderr)
            return 2

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # clean up (server, database) on `kill` as on Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    fills: list[Fill] = []
    timings: list[Timing] = []
    plans: dict[str, str] = {}
    api_available = not args.no_api
    report: dict[str, Any] = {}
    server: Server | None = None
    try:
        start_django(args.db, home, pg_url)
        from django.db import connection

        from concilia.cases.models import Case
        from concilia.intake.management.commands.demo import DEMO_PASSWORD

        report["environment"] = environment(args)
        for key, value in report["environment"].items():
            print(f"{key:<17}{value}")
        print(f"speed            {python_speed():.2f} µs to sum 1000 integers", flush=True)
        set_up_company()
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA cache_size = -1000000")  # 1 GB for the fill's index work
        for size in args.sizes:
            have = Case.objects.count()
            if have > size:
                print(f"\n{size:,} cases: the database already holds {have:,}; skipped")
                continue
            print(f"\n== {size:,} cases on {args.db}", flush=True)
            started = time.monotonic()
            added, customers, messages_added = fill(size, args.seed)
            filled = time.monotonic() - started
            analyzed = analyze() if added else 0.0
            record = Fill(args.db, size, added, customers, messages_added, filled, analyzed)
            describe_data(record)
            fills.append(record)
            print(
                f"filled {added:,} cases, {customers:,} customers, {messages_added:,} messages in "
                f"{filled:.0f}s (+{analyzed:.0f}s ANALYZE); {record.open_cases:,} open, "
                f"{record.overdue_cases:,} overdue, {record.bench_agent_open:,} open for "
                f"{BENCH_USERNAME}; database {record.database_mb:,.0f} MB",
                flush=True,
            )
            emails = customer_emails(rng)
            token = issue_token()
            with_plans = args.explain_all or size == args.sizes[-1]
            profiles, size_plans = in_process(FILTERS, emails, token, with_plans)
            for (surface, name), plan in size_plans.items():
                plans[f"{surface} {name} @ {size}"] = plan
            connection.close()

            record.code = code_version()
            server = Server(home, args.workers, args.start_timeout)
            server.start()
            browser = Browser(server.port)
            browser.sign_in(BENCH_USERNAME, DEMO_PASSWORD)
            api = Browser(server.port, {"Authorization": f"Bearer {token}"})
            if api_available:
                status, _, _ = api.request("GET", f"/api/v1/cases?limit={PAGE_SIZE}")
                if status != 200:
                    api_available = False
                    print(f"  API GET /api/v1/cases: not available ({status})", flush=True)
            surfaces = [("page", browser)] + ([("api", api)] if api_available else [])
            for surface, client in surfaces:
                for flt in FILTERS:
                    if surface == "api" and not api_available:
                        break
                    timing = measure_steadily(client, surface, flt, emails, args, server.pgid)
                    timing.db, timing.cases = args.db, size
                    profile = profiles.get((surface, flt.name))
                    if profile is not None:
                        timing.queries = profile.queries
                        timing.sql_ms = round(profile.sql_ms, 2)
                        timing.in_process_ms = round(profile.total_ms, 2)
                    timings.append(timing)
                    print(
                        f"  {surface:<4} {flt.name:<13} p50 {_ms(timing.p50_ms):>6} ms  "
                        f"p95 {_ms(timing.p95_ms):>6} ms  rows {timing.rows:>3}  "
                        f"SQL {timing.queries if timing.queries is not None else '-':>2} "
                        f"({_ms(timing.sql_ms or 0)} ms of {_ms(timing.in_process_ms or 0)})  "
                        f"n {timing.requests:>3}  statuses {timing.statuses}  "
                        f"other {timing.other_pct:.0f}% {timing.note}",
                        flush=True,
                    )
            server.stop()
            server = None
    except BenchError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        if args.json:
            report.update(
                fills=[asdict(f) for f in fills],
                timings=[asdict(t) for t in timings],
                api_available=api_available,
                plans=plans,
            )
            args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        with contextlib.suppress(Exception):
            from django.db import connection as django_connection

            django_connection.close()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
            if args.db == "postgres":
                with contextlib.suppress(Exception):
                    pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)')

    print("\n" + table(timings, api_available, args.disturbed_pct))
    text, holds = verdicts(timings, args.factor)
    print("\n" + text)
    if plans:
        print("\nQuery plans (the statement that reads the page's cases):")
        for key, plan in plans.items():
            found = scans(plan)
            print(f"\n-- {key}" + (f"  [{'; '.join(found)}]" if found else ""))
            print(plan)
    bad = [t for t in timings if t.requests and not t.ok]
    if bad:
        print(f"\n{len(bad)} measurement(s) had non-200 answers", file=sys.stderr)
        return 1
    print("\ntarget " + ("holds" if holds else "does NOT hold") + " for every held filter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
