"""Fixtures shared by every app's tests: isolated files and cache, personas, running queued jobs."""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import os
import shutil
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command

from concilia.core.memo import forget_all

# A minimal valid PDF and PNG, and the first bytes of a Windows program.
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>"
    b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
EXE_BYTES = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
    + b"\x00" * 64
    + b"This program cannot be run in DOS mode"
)


@pytest.fixture(autouse=True)
def isolated_storage_and_cache(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "concilia.core.storage.EncryptedStorage",
            "OPTIONS": {"options": {"location": str(tmp_path / "attachments")}},
        },
    }
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(tmp_path),
        }
    }
    settings.BASE_URL = "http://testserver"
    cache.clear()
    forget_all()
    yield
    cache.clear()
    forget_all()


@pytest.fixture(autouse=True)
def two_factor_not_required(settings):
    """Tests sign staff in with force_login, which has no second factor: only the sign-in tests
    (concilia/accounts/tests) turn the requirement for administrators back on."""
    settings.TWO_FACTOR_REQUIRED = "none"


@pytest.fixture
def run_tasks(db, monkeypatch):
    """Run every queued background job now, with the real database worker.

    The worker closes connections it thinks are stale; inside a test's transaction that would
    close the test's own connection, so that housekeeping is switched off here.
    """
    from django_tasks_db.management.commands import db_worker

    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)

    def run() -> None:
        call_command(
            "db_worker", batch=True, startup_delay=False, reload=False, verbosity=0, queue_name="*"
        )

    return run


@pytest.fixture
def notice(db):
    from concilia.customers.models import PrivacyNotice

    return PrivacyNotice.objects.current()


@pytest.fixture
def complaint_data(notice):
    """A web-form submission that is valid for the refund category; override what a test needs."""

    def build(**overrides: Any) -> dict[str, Any]:
        data = {
            "kind": "complaint",
            "category": "refund",
            "name": "Lucía Fernández",
            "email": "lucia@example.com",
            "phone": "+34 600 123 456",
            "order_number": "PED-10482",
            "purchase_date": (dt.date.today() - dt.timedelta(days=20)).isoformat(),  # noqa: DTZ011
            "amount": "49.90",
            "description": "Devolví el pedido hace tres semanas y no me han reembolsado.",
            "desired_resolution": "El reembolso completo.",
            "notice_version": notice.version,
            "accept_privacy": "on",
        }
        data.update(overrides)
        return {k: v for k, v in data.items() if v is not None}

    return build


@pytest.fixture
def api_payload():
    def build(**overrides: Any) -> dict[str, Any]:
        data = {
            "kind": "complaint",
            "category": "refund",
            "name": "James Carter",
            "email": "james@example.com",
            "order_number": "ORD-55120",
            "purchase_date": "2026-10-01",
            "amount": "12.50",
            "description": "My refund has not arrived after three weeks.",
            "desired_resolution": "Refund the full amount.",
            "accept_privacy": True,
        }
        data.update(overrides)
        return data

    return build


@pytest.fixture
def open_case(db, notice):
    """Open a case for a customer directly through the intake action (as any channel would)."""
    from concilia.cases.models import Category, Channel
    from concilia.intake.actions import submit_complaint

    def build(
        email: str = "lucia@example.com",
        name: str = "Lucía Fernández",
        category: str = "other",
        language: str = "es",
        **extra: Any,
    ):
        data = {
            "name": name,
            "email": email,
            "category": Category.objects.get(code=category),
            "kind": "complaint",
            "description": "Algo salió mal con mi pedido.",
            "desired_resolution": "Una solución.",
            "notice_version": notice,
            **extra,
        }
        return submit_complaint(data=data, channel=Channel.WEB, language=language).case

    return build


@pytest.fixture
def agent(db, django_user_model):
    """Ana is a support agent: she may view cases."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("ana", "ana@company.test", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_case"))
    return user


@pytest.fixture
def staff_token(agent):
    from concilia.accounts.models import ApiToken

    return ApiToken.issue(user=agent, name="helpdesk")[1]


@pytest.fixture
def integration_token(db, django_user_model):
    """The shop's integration may file complaints but not read them."""
    from concilia.accounts.models import ApiToken

    user = django_user_model.objects.create_user("shop")
    return ApiToken.issue(user=user, name="shop")[1]


# --- browser tests (Debian's Chromium driven by Playwright) ---------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def seeded():
    """Transactional tests start from a flushed database: put the migrations' seed data back."""
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    for module in (
        "concilia.cases.migrations.0002_seed_categories",
        "concilia.customers.migrations.0002_first_privacy_notice",
    ):
        importlib.import_module(module).seed(apps, None)
    # The role groups (their permissions come back with the flush's post-migrate signal).
    roles = importlib.import_module("concilia.accounts.migrations.0003_role_groups").ROLES
    for name, codenames in roles.items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        )


@pytest.fixture
def page(seeded):
    playwright_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(locale="es-ES")
        yield context.new_page()
        context.close()
        browser.close()
