"""Free text in the helpdesk queue: what it finds, that the index stays in step, that it is used.

Ana is an agent of Customer care (every case here is routed there). The same tests run on SQLite
(FTS5 trigram tables kept by triggers) and on PostgreSQL (pg_trgm GIN indexes).
"""

from __future__ import annotations

import importlib
import logging
import re
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from concilia.cases import actions, queue, search
from concilia.cases.models import Case, Message

migration = importlib.import_module("concilia.cases.migrations.0006_text_search")

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's search tables")
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's trigram indexes"
)


def found(user: Any, text: str, **filters: str) -> set[str]:
    """The references the queue shows for `text` in "All I can see"."""
    cases = queue.filtered(user, {"view": "all", "q": text, **filters})
    return set(cases.values_list("reference", flat=True))


def titled(case: Case, subject: str) -> Case:
    """The web form takes no subject (it is the description's first line): give one."""
    Case.objects.filter(pk=case.pk).update(subject=subject)
    case.refresh_from_db()
    return case


def plan(queryset: Any) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return "\n".join(row[-1] for row in cursor.fetchall())
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


class Editor:
    """What the migration's functions use of a schema editor, usable inside a test's transaction."""

    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)


# --- what it finds -------------------------------------------------------------------------


def test_finds_the_subject_the_description_and_every_message(open_case, ana):
    by_subject = titled(open_case(email="s@example.com"), "Cargo duplicado en la tarjeta")
    by_description = open_case(
        email="d@example.com", description="El repartidor dejó el paquete en Alcobendas."
    )
    by_customer = open_case(email="c@example.com")
    actions.add_customer_message(case=by_customer, body="Adjunto la factura FV-2291 corregida")
    by_reply = open_case(email="r@example.com")
    actions.reply_to_customer(case=by_reply, body="Le abonamos 12,40 € hoy mismo.", author=ana)
    by_note = open_case(email="n@example.com")
    actions.add_internal_note(case=by_note, body="Cliente VIP: llamar a Getafe", author=ana)
    open_case(email="other@example.com")

    assert found(ana, "duplicado") == {by_subject.reference}
    assert found(ana, "Alcobendas") == {by_description.reference}
    assert found(ana, "FV-2291") == {by_customer.reference}
    assert found(ana, "12,40 €") == {by_reply.reference}
    assert found(ana, "llamar a getafe") == {by_note.reference}  # internal notes too
    assert found(ana, "mi pedido") == {  # the description open_case gives by default
        c.reference for c in Case.objects.exclude(pk=by_description.pk)
    }
    assert found(ana, "no aparece en ningún sitio") == set()
    # Free text combines with the other filters.
    assert found(ana, "duplicado", kind="question") == set()


def test_a_case_with_the_text_in_several_places_comes_once(open_case, ana):
    case = titled(open_case(description="Pido el reembolso"), "Reembolso")
    actions.add_internal_note(case=case, body="Reembolso aprobado", author=ana)
    actions.reply_to_customer(case=case, body="Su reembolso está en camino", author=ana)

    page = queue.page(ana, {"view": "all", "q": "reembolso"})

    assert [c.reference for c in page.cases] == [case.reference]


def folds_beyond_ascii() -> bool:
    """SQLite's search tables always do; PostgreSQL does unless the database's ctype is C."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT upper('ñ') = 'Ñ'")
        return bool(cursor.fetchone()[0])


def test_letter_case_is_ignored_but_accents_count(open_case, ana):
    case = open_case(description="Solicito la DEVOLUCIÓN del importe y una disculpa por el daño.")

    assert found(ana, "Devolución Del") == {case.reference}
    assert found(ana, "devOLUCI") == {case.reference}
    assert found(ana, "POR EL") == {case.reference}
    if folds_beyond_ascii():
        assert found(ana, "devolución") == {case.reference}
        assert found(ana, "EL DAÑO") == {case.reference}
    # Accents are part of the text: without them it is another word.
    assert found(ana, "devolucion") == set()


def test_one_or_two_characters_are_still_found(open_case, ana):
    tax = open_case(description="El IVA está mal")
    other = open_case(email="b@example.com", description="Nada que hacer")

    assert found(ana, "iv") == {tax.reference}
    assert found(ana, "V") == {tax.reference}
    assert found(ana, "ad") == {other.reference}


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("50%", True),
        ("%", True),
        ("0% de", True),
        ("_", True),
        ("código_b", True),
        ('"oferta"', True),
        ('"', True),
        ("l'aigua", True),
        ("'", True),
        ("*urgente*", True),
        ("*", True),
        ("C:\\temp", True),
        ("\\", True),
        ("a%b", False),
        ("%%%", False),
        ("___", False),
        ("código b", False),
        ('"oferta', True),
        ("NEAR(oferta urgente)", False),
        ("oferta OR urgente", False),
        ("subject:oferta", False),
        ("-urgente", False),
        ("^50", False),
        ("(código", False),
        ("{subject}: x", False),
    ],
)
def test_special_characters_are_matched_literally(open_case, ana, text, hit):
    case = open_case(
        description='Un 50% de descuento, código_b, "oferta" de l\'aigua, *urgente* en C:\\temp'
    )
    open_case(email="otro@example.com", description="Ab cd ef")

    assert found(ana, text) == ({case.reference} if hit else set())


# --- in step with every change --------------------------------------------------------------


def test_edited_and_deleted_text_is_found_as_it_is_now(open_case, ana):
    case = open_case(description="La mesa llegó con una pata rota.")
    note = actions.add_internal_note(case=case, body="Proveedor Muebles Ortega", author=ana)
    survivor = open_case(email="b@example.com", description="Silla coja del proveedor Ortega")

    note.body = "Proveedor Hermanos Ruiz"
    note.save(update_fields=["body"])
    Case.objects.filter(pk=case.pk).update(subject="Mesa cambiada", description="Ya resuelto")

    assert found(ana, "Muebles Ortega") == set()
    assert found(ana, "hermanos ruiz") == {case.reference}
    assert found(ana, "pata rota") == set()
    assert found(ana, "mesa cambiada") == {case.reference}
    assert found(ana, "ya resuelto") == {case.reference}

    Message.objects.filter(pk=note.pk).delete()
    assert found(ana, "hermanos ruiz") == set()

    actions.add_customer_message(case=case, body="¿Hay novedades de Ortega?")
    Case.objects.filter(pk=case.pk).delete()  # its messages go with it
    assert found(ana, "ortega") == {survivor.reference}
    assert not Message.objects.filter(case_id=case.pk).exists()


def test_saving_other_fields_leaves_the_text_found(open_case, ana, sara):
    case = open_case(description="Cafetera que pierde agua")
    case.priority = "high"
    case.save()  # every column, subject and description unchanged
    actions.assign_case(case=case, assignee=ana, actor=sara)

    assert found(ana, "pierde agua") == {case.reference}


def test_merged_messages_are_found_under_the_case_they_joined(open_case, ana):
    into = open_case(description="Primera queja")
    duplicate = open_case(description="Segunda queja")
    actions.add_customer_message(case=duplicate, body="Número de serie XK-77")

    actions.merge_cases(duplicate=duplicate, into=into, actor=ana)

    assert found(ana, "XK-77") == {into.reference}
    assert found(ana, "segunda queja") == {into.reference, duplicate.reference}


# --- through the index ----------------------------------------------------------------------


@sqlite_only
def test_sqlite_looks_the_text_up_in_the_search_tables(open_case, ana):
    open_case(description="Paquete dañado")
    cases = queue.filtered(ana, {"view": "all", "q": "dañado"}).order_by("deadline", "pk")

    steps = plan(cases)

    assert "SCAN cases_case_search VIRTUAL TABLE INDEX" in steps
    assert "SCAN cases_message_search VIRTUAL TABLE INDEX" in steps
    assert not re.search(r"SCAN cases_(case|message)\b", steps), steps


@postgresql_only
def test_postgresql_looks_the_text_up_in_the_trigram_indexes(open_case, ana):
    open_case(description="Paquete dañado")
    cases = queue.filtered(ana, {"view": "all", "q": "dañado"}).order_by("deadline", "pk")
    with connection.cursor() as cursor:
        # A few rows: make the planner show the plan it picks for a big table.
        cursor.execute("SET LOCAL enable_seqscan = off")

        steps = plan(cases)

    for index in ("case_subject_trgm", "case_description_trgm", "message_body_trgm"):
        assert f"Bitmap Index Scan on {index}" in steps, steps
    assert "Seq Scan on cases_message" not in steps, steps


# --- the migration --------------------------------------------------------------------------


@sqlite_only
def test_the_triggers_in_place_are_the_ones_the_repair_puts_back(db):
    with connection.cursor() as cursor:
        # The search's own triggers (the audit log has triggers of its own on core's tables).
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'cases_%'"
        )
        installed = dict(cursor.fetchall())

    assert installed == {name: sql for name, (_table, sql) in search.SQLITE_TRIGGERS.items()}
    assert [sql for _table, sql in search.SQLITE_TRIGGERS.values()] == migration.SQLITE_TRIGGERS


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_table_rebuild_loses_no_search(seeded, open_case, ana, caplog):
    before = open_case(description="Antes de la migración")
    # What a migration altering a field does on SQLite: copy the table, drop it, rename the copy.
    old_field = Case._meta.get_field("subject")
    new_field = Case._meta.get_field("subject").clone()
    new_field.set_attributes_from_name("subject")
    new_field.max_length = 201
    with connection.schema_editor() as editor:
        editor.alter_field(Case, old_field, new_field)
    with connection.schema_editor() as editor:
        editor.alter_field(Case, new_field, old_field)

    with caplog.at_level(logging.WARNING, logger="concilia.cases.search"):
        call_command("migrate", "cases", verbosity=0)  # after every migrate: put them back

    after = open_case(email="b@example.com", description="Después de la migración")
    assert "cases_case_search_insert" in caplog.text
    assert found(ana, "de la migración") == {before.reference, after.reference}
    assert search.restore_sqlite_triggers("default") == []


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_and_forth_and_indexes_existing_rows(seeded, open_case, ana):
    case = open_case(description="Caja abollada")
    actions.add_internal_note(case=case, body="Transportista Seur", author=ana)
    unindexed = open_case(email="b@example.com", description="Otra cosa")

    call_command("migrate", "cases", "0005", verbosity=0)
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        # Written while there is no index (in SQL: today's models have columns 0005 lacks)
        cursor.execute(
            "UPDATE cases_case SET description = %s WHERE id = %s",
            ["Caja abollada otra vez", unindexed.pk],
        )
    assert "cases_case_search" not in tables

    # Every app: going back in cases also took back the apps that depend on its later migrations
    # (resolution, assistant, integrations), and later tests need their tables.
    call_command("migrate", verbosity=0)

    assert found(ana, "caja abollada") == {case.reference, unindexed.reference}
    assert found(ana, "transportista seur") == {case.reference}


@postgresql_only
def test_without_pg_trgm_the_migration_warns_and_search_still_works(open_case, ana, caplog):
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("needs a superuser to take the extension away")
        role = f"concilia_test_{uuid.uuid4().hex[:8]}"
        # All undone when the test's transaction rolls back.
        cursor.execute("DROP EXTENSION pg_trgm CASCADE")
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"SET ROLE {role}")  # may not create extensions in this database
        with caplog.at_level(logging.WARNING, logger="concilia.cases.search"):
            migration.create_search_index(None, Editor())
        cursor.execute("RESET ROLE")
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
        assert cursor.fetchone()[0] == 0

    assert "pg_trgm extension could not be installed" in caplog.text
    case = open_case(description="Sigue funcionando")
    assert found(ana, "sigue funcionando") == {case.reference}
