"""The triggers that make the database refuse edits of the audit log are there after a fresh
migrate, come back after a table rebuild dropped them (SQLite rebuilds tables for most field
changes) or after someone dropped them, and their absence is warned of meanwhile."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.apps import apps
from django.core import checks
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import translation

from concilia.core import audit, audit_triggers
from concilia.core.models import AuditEntry

BOTH = list(audit_triggers.TRIGGERS)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def assert_updates_are_refused() -> None:
    entry = audit.record(audit.VIEW, detail={"n": 1})
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        sql("UPDATE core_auditentry SET actor_label = %s WHERE seq = %s", ["eve", entry.seq])
    with pytest.raises(IntegrityError, match="only moves forward"), transaction.atomic():
        sql("UPDATE core_auditchainhead SET seq = %s", [entry.seq - 1])


def audit_warnings() -> list[checks.CheckMessage]:
    found = checks.run_checks(databases=["default"], tags=[checks.Tags.database])
    return [message for message in found if message.id == "core.W001"]


def verify_warning() -> str:
    out, err = StringIO(), StringIO()
    call_command("audit", "verify", stdout=out, stderr=err)
    assert "intact" in out.getvalue()
    return err.getvalue()


def rebuild_the_audit_table() -> None:
    """What a migration altering a field of AuditEntry does: on SQLite a table rebuild (which
    drops the table's triggers); on PostgreSQL an ALTER, which keeps them, so there the
    triggers are dropped by hand as someone with database access could."""
    model = apps.get_model("core", "AuditEntry")
    old = model._meta.get_field("actor_label")
    new = old.clone()
    new.set_attributes_from_name("actor_label")
    new.max_length = 201
    with connection.schema_editor() as editor:
        editor.alter_field(model, old, new)
    with connection.schema_editor() as editor:
        editor.alter_field(model, new, old)
    if connection.vendor == "postgresql":
        sql("DROP TRIGGER core_auditentry_append_only ON core_auditentry")


@pytest.mark.django_db
def test_a_migrated_database_has_the_triggers_and_nothing_is_warned():
    assert audit_triggers.missing() == []
    assert audit_warnings() == []
    assert verify_warning() == ""
    assert_updates_are_refused()


@pytest.mark.django_db(transaction=True)
def test_triggers_a_table_rebuild_dropped_are_warned_of_and_put_back_by_migrate(caplog):
    audit.record(audit.VIEW, detail={"before": True})
    rebuild_the_audit_table()
    assert audit_triggers.missing() == ["core_auditentry_append_only"]
    [warning] = audit_warnings()
    assert "core_auditentry_append_only" in warning.msg
    assert "core_auditentry_append_only" in verify_warning()
    sql("UPDATE core_auditentry SET actor_label = 'eve'")  # nothing stops it now
    assert AuditEntry.objects.get().actor_label == "eve"

    with caplog.at_level(logging.WARNING, logger="concilia.audit"):
        call_command("migrate", "core", verbosity=0)  # after every migrate: put them back

    assert "put back the triggers core_auditentry_append_only" in caplog.text
    assert audit_triggers.missing() == []
    assert audit_warnings() == []
    assert_updates_are_refused()
    assert audit_triggers.restore() == []  # a no-op while they are there


@pytest.mark.django_db(transaction=True)
def test_both_triggers_dropped_by_hand_are_put_back():
    if connection.vendor == "postgresql":
        sql("DROP TRIGGER core_auditentry_append_only ON core_auditentry")
        sql("DROP TRIGGER core_auditchainhead_forward ON core_auditchainhead")
    else:
        sql("DROP TRIGGER core_auditentry_append_only")
        sql("DROP TRIGGER core_auditchainhead_forward")
    assert audit_triggers.missing() == BOTH

    assert audit_triggers.restore() == BOTH

    assert audit_triggers.missing() == []
    assert_updates_are_refused()
