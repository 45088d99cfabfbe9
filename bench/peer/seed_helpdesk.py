"""Sets up and fills django-helpdesk for bench/peer/compare.py. Runs in the peer's own virtual
environment, in the site compare.py wrote (DJANGO_SETTINGS_MODULE=peersite.settings).

    python seed_helpdesk.py setup            # migrate; queues, agents, an API token (JSON out)
    python seed_helpdesk.py fill 100000      # add tickets until there are 100,000 (JSON out)

The tickets follow bench/helpdesk.py's company (the same teams as queues, the same agents and
shares, two years of history, about three tickets per customer, recent ones often still open),
with follow-ups, written by bulk inserts (COPY on PostgreSQL) through its Table class.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import django

django.setup()  # first: `helpdesk` must be django-helpdesk before bench/ comes on the path

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.utils import timezone  # noqa: E402
from helpdesk.models import FollowUp, Queue, Ticket  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

BENCH = Path(__file__).resolve().parent.parent


def _concilia_bench() -> Any:
    """bench/helpdesk.py under another name (`helpdesk` is django-helpdesk here)."""
    spec = importlib.util.spec_from_file_location("concilia_helpdesk_bench", BENCH / "helpdesk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


company = _concilia_bench()
PASSWORD = "peer-bench-password"  # noqa: S105 - a throw-away site on loopback
DAY = 86400.0
RESPONSE_DAYS = 10  # Concilia's default response time, so "overdue" means the same in both
OPEN, REOPENED, RESOLVED, CLOSED = 1, 2, 3, 4


def setup() -> dict[str, Any]:
    call_command("migrate", interactive=False, verbosity=0)
    user_model = get_user_model()
    for code, _es, english in company.TEAMS:
        Queue.objects.get_or_create(
            slug=code,
            defaults={"title": english, "allow_public_submission": True, "email_address": ""},
        )
    for username, first_name, _team, _share in company.AGENTS:
        if not user_model.objects.filter(username=username).exists():
            user_model.objects.create_user(
                username,
                f"{username}@peer.localhost",
                PASSWORD,
                first_name=first_name,
                is_staff=True,
            )
    api_user, created = user_model.objects.get_or_create(
        username="api", defaults={"is_staff": True, "email": "api@peer.localhost"}
    )
    if created:
        api_user.set_password(PASSWORD)
        api_user.save()
    token, _ = Token.objects.get_or_create(user=api_user)
    bench = user_model.objects.get(username=company.BENCH_USERNAME)
    return {
        "token": token.key,
        "agent": company.BENCH_USERNAME,
        "agent_id": bench.pk,
        "password": PASSWORD,
        "queue_id": Queue.objects.get(slug="customer-care").pk,
    }


def fill(target: int, seed: int = 2026, chunk: int = 50_000) -> dict[str, Any]:
    """Add tickets (and follow-ups) until there are `target`."""
    existing = Ticket.objects.count()
    wanted = target - existing
    started = time.monotonic()
    if wanted > 0:
        _add(wanted, random.Random(seed * 1_000_003 + existing), chunk)
    filled = time.monotonic() - started
    started = time.monotonic()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in ("helpdesk_ticket", "helpdesk_followup"):
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    now = timezone.now()
    bench = get_user_model().objects.get(username=company.BENCH_USERNAME)
    open_tickets = Ticket.objects.filter(status__in=[OPEN, REOPENED])
    return {
        "tickets": Ticket.objects.count(),
        "added": max(wanted, 0),
        "followups": FollowUp.objects.count(),
        "open": open_tickets.count(),
        "overdue": open_tickets.filter(due_date__lt=now).count(),
        "agent_open": open_tickets.filter(assigned_to=bench).count(),
        "emails": _customer_emails(random.Random(seed)),
        "fill_s": round(filled, 1),
        "analyze_s": round(time.monotonic() - started, 1),
    }


def _add(wanted: int, rng: random.Random, chunk: int) -> None:
    sqlite = connection.vendor == "sqlite"
    utc = dt.UTC

    def when(epoch: float) -> Any:
        moment = dt.datetime.fromtimestamp(epoch, utc)
        return moment.replace(tzinfo=None).isoformat(" ") if sqlite else moment

    queues = {q.slug: q.pk for q in Queue.objects.all()}
    people = {u.username: u.pk for u in get_user_model().objects.all()}
    queue_agents: dict[str, tuple[list[int], list[int]]] = {}
    for username, _first, team, share in company.AGENTS:
        ids, weights = queue_agents.setdefault(team, ([], []))
        ids.append(people[username])
        weights.append(share)
    categories = list(company.CATEGORIES)
    weights = [company.CATEGORIES[c][1] for c in categories]
    now = timezone.now().timestamp()
    span = company.YEARS_OF_HISTORY * 365 * DAY
    created = sorted(now - span * rng.random() ** 1.25 for _ in range(wanted))
    base_customer = Ticket.objects.count()
    owners: list[int] = []
    while len(owners) < wanted:
        owners += [len(owners)] * company._cases_per_customer(rng)
    owners = owners[:wanted]
    rng.shuffle(owners)
    emails = {}
    tickets = company.Table(
        Ticket,
        [
            "id", "title", "queue_id", "created", "modified", "submitter_email",
            "assigned_to_id", "status", "on_hold", "description", "resolution", "priority",
            "due_date", "secret_key",
        ],
    )  # fmt: skip
    followups = company.Table(
        FollowUp,
        ["id", "ticket_id", "date", "title", "comment", "public", "user_id", "new_status"],
    )
    ticket_id = (Ticket.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    followup_id = (FollowUp.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    for start in range(0, wanted, chunk):
        ticket_rows, followup_rows = [], []
        for i in range(start, min(start + chunk, wanted)):
            t = created[i]
            owner = owners[i]
            english = rng.random() < 0.25
            if owner not in emails:
                first = rng.choice(company.FIRST_EN if english else company.FIRST_ES)
                last = rng.choice(company.LAST_EN if english else company.LAST_ES)
                email = f"{first}.{last}.{base_customer + owner}@{rng.choice(company.DOMAINS)}"
                emails[owner] = email.lower().translate(company.ASCII)
            code = rng.choices(categories, weights=weights)[0]
            team = company.CATEGORIES[code][0]
            age = (now - t) / DAY
            p_closed = 0.2 if age < 7 else 0.65 if age < 30 else 0.95 if age < 90 else 0.993
            closed = rng.random() < p_closed
            assignee = None
            if rng.random() < (0.97 if closed else 0.85):
                ids, shares = queue_agents[team]
                assignee = rng.choices(ids, weights=shares)[0]
            end = t + min(age * rng.random(), rng.expovariate(1 / 5.0)) * DAY if closed else now
            status = (
                rng.choice([RESOLVED, CLOSED])
                if closed
                else (REOPENED if rng.random() < 0.1 else OPEN)
            )
            description = rng.choice(company.TEXTS[code][english]).format(
                month=rng.choice(company.MONTHS),
                amount=rng.randint(5, 500),
                order=f"ORD-{rng.randint(10_000, 99_999)}",
                product=rng.choice(company.PRODUCTS_EN if english else company.PRODUCTS_ES),
                days=rng.randint(3, 30),
            )
            ticket_rows.append(
                (
                    ticket_id, description[:120], queues[team], when(t), when(end), emails[owner],
                    assignee, status, False, description, "", rng.randint(1, 5),
                    when(t + RESPONSE_DAYS * 1.4 * DAY), secrets.token_hex(18),
                )
            )  # fmt: skip
            responder = assignee or people["agent"]
            thread = []
            if closed or rng.random() < 0.7:
                thread.append((t + min(end - t, rng.expovariate(1 / 0.8) * DAY) * 0.9, OPEN))
            if closed:
                thread.append((end, status))
            for moment, new_status in thread:
                reply = company.REPLIES[english][0].format(name=emails[owner].split(".")[0])
                followup_rows.append(
                    (
                        followup_id, ticket_id, when(moment), "Comment", reply, True, responder,
                        new_status if new_status != OPEN else None,
                    )
                )  # fmt: skip
                followup_id += 1
            ticket_id += 1
        with transaction.atomic():
            tickets.insert(ticket_rows)
            followups.insert(followup_rows)
        print(
            f"\r  filled {min(start + chunk, wanted):,}/{wanted:,} tickets", end="", file=sys.stderr
        )
    print(file=sys.stderr)
    if not sqlite:  # COPY with explicit ids leaves the identity sequences behind
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Ticket, FollowUp]):
                cursor.execute(statement)


def _customer_emails(rng: random.Random, how_many: int = 20) -> list[str]:
    """Emails of customers with 3-12 tickets (what an agent looks up), as bench/helpdesk.py picks
    Concilia's."""
    from django.db.models import Count

    rows = list(
        Ticket.objects.values("submitter_email")
        .annotate(n=Count("id"))
        .filter(n__gte=3, n__lte=12)
        .order_by("submitter_email")
        .values_list("submitter_email", flat=True)[:2000]
    )
    if not rows:
        rows = list(Ticket.objects.values_list("submitter_email", flat=True)[:how_many])
    return sorted(rng.sample(rows, min(how_many, len(rows))))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "setup":
        result = setup()
    elif command == "fill" and len(sys.argv) == 3:
        result = fill(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
    print("RESULT " + json.dumps(result))
