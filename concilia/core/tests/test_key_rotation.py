"""Key rotation (`concilia keys`): a new key encrypts at once, the old one still decrypts, and the
background job writes every encrypted value and file again with the new key, resumably, without
overwriting a change made meanwhile; then the old key can be retired."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import translation
from django_tasks_db.models import DBTaskResult

from concilia.core import crypto, rekeying
from concilia.customers.actions import identify_customer
from concilia.customers.models import Customer

PEOPLE = [
    (f"Persona Número {i}", f"persona{i}@example.org", f"+34 600 000 00{i}") for i in range(5)
]


@pytest.fixture
def key_file(db, settings, tmp_path):
    """Keys in a key file of their own (as a deployment without CONCILIA_ENCRYPTION_KEYS)."""
    settings.HOME = tmp_path
    settings.ENCRYPTION_KEYS = []
    return tmp_path / "keys" / crypto.KEY_FILE


def keys(*args: str) -> str:
    out = StringIO()
    with translation.override("en"):  # commands speak the site's language (Spanish)
        call_command("keys", *args, stdout=out, stderr=out)
    return out.getvalue()


def stored_key_ids() -> set[str]:
    """The key id of every stored customer value and attachment file, as on disk."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, email, phone FROM customers_customer")
        values = [value for row in cursor.fetchall() for value in row if value]
    storage = storages["attachments"]
    return {crypto.stored_key_id(value) for value in values} | {
        storage.stored_key_id(name) for name in storage.walk()
    }


def people_with_files() -> list[str]:
    storage = storages["attachments"]
    names = []
    for i, (name, email, phone) in enumerate(PEOPLE):
        identify_customer(name=name, email=email, phone=phone)
        names.append(storage.save(f"2026/0{i}/file{i}.pdf", ContentFile(f"contenido {i}".encode())))
    return names


def test_a_rotation_keeps_old_values_readable_and_the_job_moves_everything_to_the_new_key(
    key_file, run_tasks
):
    # Given customers and files written with the first key
    files = people_with_files()
    first = crypto.keyring().current
    assert stored_key_ids() == {first}
    # When the operator rotates
    said = keys("rotate")
    new = crypto.keyring().current
    assert new != first and f"Key {new} added first" in said and "Re-encryption queued" in said
    assert [crypto.key_id(k) for k in crypto.read_key_file(key_file)] == [new, first]
    # Then until the job runs the old values still read, new ones use the new key
    assert sorted((c.name, c.email, c.phone) for c in Customer.objects.all()) == sorted(PEOPLE)
    identify_customer(name="Nueva Persona", email="nueva@example.org")
    status = keys("status")
    assert f"{first}: 5" in status and "still use an older key" in status
    # and after it, everything uses the new key and reads the same
    run_tasks()
    assert stored_key_ids() == {new}
    assert keys("status").endswith("Everything uses the current key.\n")
    assert Customer.objects.with_email("PERSONA3@example.org").get().phone == "+34 600 000 003"
    storage = storages["attachments"]
    assert [storage.open(name).read() for name in files] == [
        f"contenido {i}".encode() for i in range(5)
    ]
    # The old key, which nothing uses now, can be retired
    assert keys("retire") == f"Removed keys: {first}\n"
    assert [crypto.key_id(k) for k in crypto.read_key_file(key_file)] == [new]
    assert Customer.objects.count() == 6


def test_the_job_works_in_slices_and_carries_on_where_it_stopped(key_file, run_tasks, monkeypatch):
    people_with_files()
    rekeying.add_key_to_file()
    monkeypatch.setattr(rekeying, "BATCH", 2)
    # A slice of no time does one batch (or one file), then queues the next slice
    rekeying.reencrypt_everything.enqueue(budget_seconds=0)
    run_tasks()
    slices = DBTaskResult.objects.filter(task_path__endswith="reencrypt_everything").count()
    assert slices > 5
    assert stored_key_ids() == {crypto.keyring().current}
    assert DBTaskResult.objects.filter(status="FAILED").count() == 0


def test_a_change_made_while_the_job_runs_is_kept(key_file, monkeypatch):
    identify_customer(name="Ana Antes", email="ana@example.org", phone="+34 600 111 111")
    rekeying.add_key_to_file()
    reencrypt = crypto.reencrypt_text

    def a_person_edits_meanwhile(value: str) -> str:
        customer = Customer.objects.get()
        if customer.phone != "+34 699 999 999":
            customer.phone = "+34 699 999 999"
            customer.save(update_fields=["phone"])
        return reencrypt(value)

    monkeypatch.setattr(crypto, "reencrypt_text", a_person_edits_meanwhile)
    rekeying.reencrypt()
    monkeypatch.undo()
    assert Customer.objects.get().phone == "+34 699 999 999"
    assert stored_key_ids() == {crypto.keyring().current}


def test_a_value_that_does_not_open_is_reported_and_the_rest_moves_on(key_file, caplog):
    people_with_files()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET phone = %s WHERE email_index = %s",
            [
                "enc1:0000000000:gAAAAAbroken",
                crypto.blind_index("persona0@example.org", purpose="email"),
            ],
        )
    rekeying.add_key_to_file()
    assert rekeying.reencrypt() is None
    assert "customers.Customer.phone of row" in caplog.text
    assert "0000000000" in keys("status")  # shown as written with a key this deployment lacks


def test_with_keys_in_the_environment_rotate_says_what_to_do(db, settings):
    settings.ENCRYPTION_KEYS = [crypto.new_key()]
    with pytest.raises(CommandError, match="CONCILIA_ENCRYPTION_KEYS=") as error:
        keys("rotate")
    # a fresh key is offered, first, with the current ones after it
    suggested = str(error.value).split("CONCILIA_ENCRYPTION_KEYS=")[1].split(",")[0]
    assert crypto.key_id(suggested) not in crypto.keyring().ids
    with pytest.raises(CommandError):
        keys("retire")
