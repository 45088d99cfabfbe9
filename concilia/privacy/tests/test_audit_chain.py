"""The audit log cannot be edited: the application and the database refuse changes, and
`concilia audit verify` finds any entry an attacker with database access changed, rewrote or
removed (after dropping the triggers, as such an attacker would)."""

from __future__ import annotations

import importlib
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, connections, transaction
from django.utils import translation

from concilia.core import audit
from concilia.core.models import AppendOnly, AuditChainHead, AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The messages are read in English (the command speaks the site's language, Spanish)."""
    with translation.override("en"):
        yield


MIGRATION = importlib.import_module("concilia.core.migrations.0006_audit_log")


def three_entries() -> list[AuditEntry]:
    return [audit.record(audit.VIEW, detail={"n": n}) for n in range(3)]


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def drop_triggers() -> None:
    """What an attacker with database access does first (undone with the test's transaction)."""
    if connection.vendor == "postgresql":
        sql(MIGRATION.POSTGRESQL_DROP)
    else:
        for statement in MIGRATION.SQLITE_DROP:
            sql(statement)


def verify_command(*anchors: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("audit", "verify", *(f"--anchor={a}" for a in anchors), stdout=out)
    return out.getvalue()


def broken_command(*anchors: str) -> str:
    with pytest.raises(CommandError) as raised:
        verify_command(*anchors)
    assert raised.value.returncode == 1
    return str(raised.value)


def test_each_entry_holds_the_hash_of_the_one_before_and_the_chain_verifies():
    first, second, third = three_entries()
    assert second.seq == first.seq + 1 and third.seq == second.seq + 1
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
    status = audit.verify()
    assert status.ok
    assert (status.verified_to, status.head_hash) == (third.seq, third.hash)
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (third.seq, third.hash)
    output = verify_command()
    assert f"intact: {third.seq} entries" in output
    assert f"Last entry: {third.seq}:{third.hash}" in output


def test_the_database_refuses_an_update_through_sql():
    entry = three_entries()[1]
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        sql("UPDATE core_auditentry SET actor_label = %s WHERE seq = %s", ["eve", entry.seq])
    with pytest.raises(IntegrityError, match="only moves forward"), transaction.atomic():
        sql("UPDATE core_auditchainhead SET seq = %s", [entry.seq])  # hiding the last entry
    assert AuditEntry.objects.get(seq=entry.seq).actor_label == "system"
    assert audit.verify().ok


def test_postgresql_refuses_a_delete_through_sql_too():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's DELETE trigger would break Django's flush; verify finds deletions")
    entry = three_entries()[1]
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        sql("DELETE FROM core_auditentry WHERE seq = %s", [entry.seq])
    with pytest.raises(IntegrityError, match="only moves forward"), transaction.atomic():
        sql("DELETE FROM core_auditchainhead")
    assert AuditEntry.objects.count() == 3


def test_the_application_refuses_to_change_or_delete_entries():
    entry = three_entries()[0]
    entry.actor_label = "eve"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(actor_label="eve")
    with pytest.raises(AppendOnly):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.filter(actor_label="system").count() == 3


def test_a_changed_entry_is_found_and_named():
    first, second, _third = three_entries()
    drop_triggers()
    sql("UPDATE core_auditentry SET actor_label = %s WHERE seq = %s", ["eve", second.seq])

    status = audit.verify()
    assert (status.broken.seq, status.broken.problem) == (second.seq, "changed")
    assert status.verified_to == first.seq
    message = broken_command()
    assert f"broken at entry {second.seq}" in message
    assert "was changed after it was written" in message


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link():
    _first, second, third = three_entries()
    drop_triggers()
    values = {name: getattr(second, name) for name in audit.HASHED}
    values["actor_label"] = "eve"
    forged = audit.entry_hash(values)
    sql(
        "UPDATE core_auditentry SET actor_label = %s, hash = %s WHERE seq = %s",
        ["eve", forged, second.seq],
    )

    status = audit.verify()
    assert (status.broken.seq, status.broken.problem) == (third.seq, "relinked")
    assert f"entry {second.seq} was rewritten" in status.broken.message


def test_deleted_entries_are_found_in_the_middle_and_at_the_end():
    first, second, _third = three_entries()
    drop_triggers()
    sql("DELETE FROM core_auditentry WHERE seq = %s", [second.seq])
    status = audit.verify()
    assert (status.broken.seq, status.broken.problem) == (second.seq, "missing")
    assert status.verified_to == first.seq

    sql("DELETE FROM core_auditentry WHERE seq > %s", [first.seq])
    status = audit.verify()
    assert (status.broken.seq, status.broken.problem) == (second.seq, "missing")
    assert "deleted from the end" in status.broken.message


def test_a_head_set_back_to_hide_the_last_entries_is_found():
    first, second, _third = three_entries()
    drop_triggers()
    sql("UPDATE core_auditchainhead SET seq = %s, hash = %s", [first.seq, first.hash])
    status = audit.verify()
    assert (status.broken.seq, status.broken.problem) == (second.seq, "head")
    assert f"set back to entry {first.seq}" in status.broken.message


def test_an_anchor_noted_earlier_catches_a_chain_rewritten_from_start_to_end():
    first, second, third = three_entries()
    anchor = f"{second.seq}:{second.hash}"
    assert "intact" in verify_command(anchor)
    # The attacker rewrites entry 2 and every hash after it, head included: a consistent chain.
    drop_triggers()
    previous = first.hash
    for entry in (second, third):
        values = {name: getattr(entry, name) for name in audit.HASHED}
        values.update(prev_hash=previous, actor_label="eve")
        previous = audit.entry_hash(values)
        sql(
            "UPDATE core_auditentry SET actor_label = 'eve', prev_hash = %s, hash = %s "
            "WHERE seq = %s",
            [values["prev_hash"], previous, entry.seq],
        )
    sql("UPDATE core_auditchainhead SET hash = %s", [previous])
    assert audit.verify().ok

    message = broken_command(anchor)
    assert f"Entry {second.seq} no longer has the hash noted for it" in message


def test_a_malformed_anchor_is_explained():
    with pytest.raises(CommandError, match="the entry's number, a colon and its hash"):
        verify_command("12-abc")


def test_a_verification_resumes_from_a_checkpoint():
    first, _second, third = three_entries()
    status = audit.verify(after=(first.seq, first.hash))
    assert (status.ok, status.checked, status.verified_to) == (True, 2, third.seq)


@pytest.mark.django_db(transaction=True)
def test_entries_written_at_the_same_time_by_many_requests_form_one_chain():
    """Eight workers each write 25 entries, half of them inside a longer transaction."""
    start = audit.verify().verified_to
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(25):
                if n % 2:
                    with transaction.atomic():
                        AuditChainHead.objects.exists()  # other work in the same transaction
                        audit.record(audit.VIEW, detail={"worker": worker, "n": n})
                else:
                    audit.record(audit.VIEW, detail={"worker": worker, "n": n})
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    status = audit.verify()
    assert status.ok
    assert status.verified_to == start + 200
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, start + 201))
