"""Free text in the helpdesk queue: what it finds, that the blind index stays in step, that it is
used, and that it survives key rotations (the texts are encrypted: concilia/cases/search.py).

Ana is an agent of Customer care (every case here is routed there). The same tests run on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from concilia.cases import actions, queue, search
from concilia.cases.models import Case, Message, TextGram
from concilia.core import crypto, rekeying
from concilia.customers.actions import identify_customer


def found(user: Any, text: str, **filters: str) -> set[str]:
    """The references the queue shows for `text` in "All I can see"."""
    cases = queue.filtered(user, {"view": "all", "q": text, **filters})
    return set(cases.values_list("reference", flat=True))


def titled(case: Case, subject: str) -> Case:
    """The web form takes no subject (it is the description's first line): give one."""
    case.subject = subject
    case.save(update_fields=["subject"])
    return case


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


def test_letter_case_is_ignored_but_accents_count(open_case, ana):
    case = open_case(description="Solicito la DEVOLUCIÓN del importe y una disculpa por el daño.")

    assert found(ana, "Devolución Del") == {case.reference}
    assert found(ana, "devOLUCI") == {case.reference}
    assert found(ana, "POR EL") == {case.reference}
    # Case is folded in Python, for every alphabet, whatever the database's collation.
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


def test_one_or_two_characters_search_only_the_latest_cases_and_say_so(
    open_case, ana, monkeypatch, client
):
    older = open_case(description="El IVA está mal")
    newer = open_case(email="b@example.com", description="Otro IVA mal")
    monkeypatch.setattr(search, "SHORT_SCAN_LIMIT", 1)  # the latest activity only

    assert found(ana, "iv") == {newer.reference}
    assert found(ana, "iva") == {older.reference, newer.reference}  # the index: every case
    client.force_login(ana)
    page = client.get("/helpdesk/", {"view": "all"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "one or two only the 2,000 with the latest activity" in page


# --- in step with every change --------------------------------------------------------------


def test_edited_and_deleted_text_is_found_as_it_is_now(open_case, ana):
    case = open_case(description="La mesa llegó con una pata rota.")
    note = actions.add_internal_note(case=case, body="Proveedor Muebles Ortega", author=ana)
    survivor = open_case(email="b@example.com", description="Silla coja del proveedor Ortega")

    note.body = "Proveedor Hermanos Ruiz"
    note.save(update_fields=["body"])
    case.subject, case.description = "Mesa cambiada", "Ya resuelto"
    case.save(update_fields=["subject", "description"])

    assert found(ana, "Muebles Ortega") == set()
    assert found(ana, "hermanos ruiz") == {case.reference}
    assert found(ana, "pata rota") == set()
    assert found(ana, "mesa cambiada") == {case.reference}
    assert found(ana, "ya resuelto") == {case.reference}

    # Deleted without save(): its pieces may stay in the index, the check leaves it unfound.
    Message.objects.filter(pk=note.pk).delete()
    assert found(ana, "hermanos ruiz") == set()

    actions.add_customer_message(case=case, body="¿Hay novedades de Ortega?")
    Case.objects.filter(pk=case.pk).delete()  # its messages and index rows go with it
    assert found(ana, "ortega") == {survivor.reference}
    assert not Message.objects.filter(case_id=case.pk).exists()
    assert not TextGram.objects.filter(case_id=case.pk).exists()


def test_saving_other_fields_leaves_the_text_found(open_case, ana, sara):
    case = open_case(description="Cafetera que pierde agua")
    case.priority = "high"
    case.save()  # every column, subject and description unchanged
    actions.assign_case(case=case, assignee=ana, actor=sara)

    assert found(ana, "pierde agua") == {case.reference}


def test_saving_changed_text_without_naming_fields_indexes_it_again(open_case, ana):
    case = Case.objects.get(pk=open_case(description="Tostadora quemada").pk)  # loaded fresh
    case.subject, case.description = "Hervidor", "Hervidor sin tapa"
    case.save()  # every column

    assert found(ana, "tostadora") == set()
    assert found(ana, "hervidor sin tapa") == {case.reference}


def test_new_text_is_only_added_and_unchanged_text_is_not_read_again(open_case, ana):
    """A new case and a new message add their own pieces without reading the case's other
    texts; a save that changes no text leaves the index alone."""
    case = open_case(description="Lavadora que no centrifuga")
    gram_table = TextGram._meta.db_table
    message_table = Message._meta.db_table

    def index_work(queries: list[dict[str, str]]) -> list[str]:
        return [
            q["sql"]
            for q in queries
            if gram_table in q["sql"] or f'FROM "{message_table}"' in q["sql"]
        ]

    with CaptureQueriesContext(connection) as added:
        actions.add_customer_message(case=case, body="Referencia del pedido PX-4411")
    work = index_work(added.captured_queries)
    assert len(work) == 1 and work[0].lstrip().upper().startswith("INSERT"), work

    loaded = Case.objects.get(pk=case.pk)
    loaded.priority = "high"
    with CaptureQueriesContext(connection) as saved:
        loaded.save()
    assert index_work(saved.captured_queries) == []

    assert found(ana, "PX-4411") == {case.reference}
    assert found(ana, "no centrifuga") == {case.reference}


def test_merged_messages_are_found_under_the_case_they_joined(open_case, ana):
    into = open_case(description="Primera queja")
    duplicate = open_case(description="Segunda queja")
    actions.add_customer_message(case=duplicate, body="Número de serie XK-77")

    actions.merge_cases(duplicate=duplicate, into=into, actor=ana)

    assert found(ana, "XK-77") == {into.reference}
    assert found(ana, "segunda queja") == {into.reference, duplicate.reference}


def test_text_changed_behind_the_index_is_found_after_a_reindex(open_case, ana):
    case = open_case(description="Antes")
    # QuerySet.update() writes without save(): the index does not know yet
    Case.objects.filter(pk=case.pk).update(description="Tostadora quemada")
    assert found(ana, "tostadora") == set()

    out = StringIO()
    with translation.override("en"):
        call_command("search", "reindex", stdout=out)

    assert "cases indexed" in out.getvalue()
    assert found(ana, "tostadora") == {case.reference}


# --- the blind index ------------------------------------------------------------------------


def test_the_index_holds_keyed_hashes_and_the_rows_hold_no_text(open_case, ana):
    case = titled(open_case(description="Reclamo por la lavadora Bosch"), "Lavadora averiada")
    actions.add_internal_note(case=case, body="Técnico Zubizarreta irá el lunes", author=ana)

    with connection.cursor() as cursor:
        cursor.execute("SELECT subject, description FROM cases_case WHERE id = %s", [case.pk])
        subject, description = cursor.fetchone()
        cursor.execute("SELECT body FROM cases_message WHERE case_id = %s", [case.pk])
        bodies = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT gram FROM cases_textgram WHERE case_id = %s", [case.pk])
        grams = {row[0] for row in cursor.fetchall()}

    raw = " ".join([subject, description, *bodies])
    for secret in ("Lavadora", "lavadora", "Bosch", "Zubizarreta", "lunes"):
        assert secret not in raw
    assert all(value.startswith("enc1:") for value in [subject, description, *bodies])
    # one row per distinct piece of each text, as a 64-bit integer: no text at all
    expected = search.text_hashes(
        [
            "Lavadora averiada",
            "Reclamo por la lavadora Bosch",
            *case.messages.values_list("body", flat=True),
        ]
    )
    assert grams == expected
    assert all(isinstance(gram, int) and -(2**63) <= gram < 2**63 for gram in grams)


def test_pieces_found_apart_are_not_a_match(open_case, ana):
    # "abcd" has the pieces abc and bcd; this text has both, but never "abcd"
    apart = open_case(description="abc-bcd")
    across = titled(open_case(email="b@example.com", description="mano"), "la ve")
    whole = open_case(email="c@example.com", description="xxabcdxx")

    assert search.text_hashes(["abcd"]) <= search.text_hashes(["abc-bcd"])
    assert found(ana, "abcd") == {whole.reference}
    # pieces from the subject and the description together are not a text either
    assert found(ana, "la vemano") == set()
    assert {apart.reference, across.reference}.isdisjoint(found(ana, "abcd"))


def test_pages_show_only_real_matches_and_carry_on_past_false_candidates(open_case, ana):
    # Given three cases with "abcd" and, between them in deadline order, false candidates
    cases = []
    for i in range(7):
        text = "xxabcdxx" if i % 3 == 0 else "abc-bcd"
        cases.append(open_case(email=f"p{i}@example.com", description=text))
    expected = [c.reference for c in cases if c.description == "xxabcdxx"]

    # When the agent pages through the results one case a page
    shown, after = [], ""
    while True:
        result = queue.page(ana, {"view": "all", "q": "ABCD", "sort": "age", "after": after}, 1)
        shown += [c.reference for c in result.cases]
        after = result.next_after
        if not after:
            break

    # Then every real match comes once, in order, and no false candidate
    assert shown == expected


def test_non_ascii_text_folds_case_in_every_alphabet(open_case, ana):
    greek = open_case(description="Η ΠΑΡΑΓΓΕΛΊΑ δεν ήρθε")  # noqa: RUF001
    german = open_case(email="b@example.com", description="Die Größe stimmt nicht")
    turkish = open_case(email="c@example.com", description="Çok geç geldi, ŞİKAYET ediyorum")

    assert found(ana, "παραγγελία") == {greek.reference}
    assert found(ana, "GRÖSSE") == {german.reference}  # ß folds to ss
    assert found(ana, "çok GEÇ") == {turkish.reference}
    assert found(ana, "parangelia") == set()


def test_a_long_query_is_found_exactly(open_case, ana):
    text = "El pedido número 4471 llegó tarde, abierto y con la factura de otro cliente dentro"
    case = open_case(description=f"Hola. {text}. Gracias.")
    open_case(email="b@example.com", description=text.replace("4471", "4472"))

    assert found(ana, text.upper()) == {case.reference}


def test_the_search_counts_its_queries_not_the_cases(open_case, ana, django_assert_max_num_queries):
    for i in range(30):
        open_case(email=f"p{i}@example.com", description=f"Pedido {i} con retraso")
    target = open_case(email="t@example.com", description="Pedido con el cristal astillado")

    with django_assert_max_num_queries(20):
        result = found(ana, "cristal astillado")

    assert result == {target.reference}


# --- key rotations --------------------------------------------------------------------------


@pytest.fixture
def key_files(db, settings, tmp_path):
    """Encryption and index keys in key files of their own (no keys in the environment)."""
    settings.HOME = tmp_path
    settings.ENCRYPTION_KEYS = []
    settings.BLIND_INDEX_KEY = ""
    crypto.forget_keys()
    yield tmp_path / "keys"
    crypto.forget_keys()


def keys(*args: str) -> str:
    out = StringIO()
    with translation.override("en"):
        call_command("keys", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_search_survives_a_rotation_of_the_encryption_key(key_files, open_case, ana):
    case = open_case(description="Bicicleta con el cuadro doblado")
    actions.add_internal_note(case=case, body="Enviar a taller Sanz", author=ana)

    keys("rotate", "--now")

    with connection.cursor() as cursor:
        cursor.execute("SELECT description FROM cases_case WHERE id = %s", [case.pk])
        assert crypto.stored_key_id(cursor.fetchone()[0]) == crypto.keyring().current
    assert found(ana, "cuadro doblado") == {case.reference}
    assert found(ana, "taller sanz") == {case.reference}


def test_search_survives_a_rotation_of_the_index_key_and_finds_during_it(
    key_files, open_case, ana, run_tasks
):
    case = open_case(name="Íñigo Berrocal", email="inigo@example.com", description="Horno frío")
    before = set(TextGram.objects.filter(case=case).values_list("gram", flat=True))
    old_id = crypto.index_key_ids()[0]

    # When a new index key is added (the job not run yet)
    new_id = rekeying.add_index_key_to_file()

    # Then look-ups by either key still work: the old rows, and a case written now with the new
    assert crypto.index_key_ids() == (new_id, old_id)
    assert found(ana, "horno frío") == {case.reference}
    assert set(queue.filtered(ana, {"view": "all", "email": "INIGO@example.com"})) == {case}
    assert set(queue.filtered(ana, {"view": "all", "name": "inigo berrocal"})) == {case}
    # and the same email is the same customer, not a second one under the new key
    again = identify_customer(email="INIGO@example.com", name="Íñigo Berrocal")
    assert again.pk == case.customer_id
    fresh = open_case(email="n@example.com", description="Horno nuevo")
    assert found(ana, "horno") == {case.reference, fresh.reference}

    # When the job has computed everything again
    rekeying.queue_index_rotation()
    run_tasks()

    # Then only the new key is left, every index uses it, and everything is found
    assert crypto.index_key_ids() == (new_id,)
    after = set(TextGram.objects.filter(case=case).values_list("gram", flat=True))
    assert after and after.isdisjoint(before)
    assert found(ana, "horno frío") == {case.reference}
    assert set(queue.filtered(ana, {"view": "all", "email": "inigo@example.com"})) == {case}
    assert set(queue.filtered(ana, {"view": "all", "name": "BERROCAL"})) == {case}


def test_the_index_rotation_command_and_its_audit_trail(key_files, open_case, ana):
    from concilia.core.models import AuditEntry

    case = open_case(description="Nevera ruidosa")
    old_id = crypto.index_key_ids()[0]

    output = keys("rotate-index", "--now")

    new_id = crypto.index_key_ids()[0]
    assert new_id != old_id and crypto.index_key_ids() == (new_id,)
    assert f"Every blind index uses key {new_id}" in output
    assert found(ana, "nevera ruidosa") == {case.reference}
    operations = [
        entry.detail.get("operation")
        for entry in AuditEntry.objects.order_by("seq")
        if entry.detail.get("operation")
    ]
    assert operations[-3:] == ["rotate_index_key", "reindex_done", "retire_index_keys"]
    keys("rotate", "--now")
    keys("retire")
    operations = [
        entry.detail.get("operation")
        for entry in AuditEntry.objects.order_by("seq")
        if entry.detail.get("operation")
    ]
    assert operations[-3:] == ["rotate_key", "reencrypt_done", "retire_keys"]


def test_the_admin_finds_cases_by_their_encrypted_text(admin_client, open_case):
    from django.urls import reverse

    case = titled(open_case(description="Cafetera Oster"), "Cafetera que gotea")
    open_case(email="b@example.com", description="Otra cosa")

    listing = admin_client.get(reverse("admin:cases_case_changelist"), {"q": "GOTEA"})

    assert listing.status_code == 200
    assert [c.reference for c in listing.context["cl"].result_list] == [case.reference]


# --- the migration --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_text_and_indexes_it_and_goes_back(seeded, open_case, ana):
    case = open_case(description="Caja abollada")
    actions.add_internal_note(case=case, body="Transportista Seur", author=ana)

    call_command("migrate", "cases", "0012", verbosity=0)
    with connection.cursor() as cursor:
        # Going back wrote the plain texts again; one more written by the previous version
        cursor.execute("SELECT description FROM cases_case WHERE id = %s", [case.pk])
        assert cursor.fetchone()[0] == "Caja abollada"
        cursor.execute(
            "UPDATE cases_case SET description = %s WHERE id = %s",
            ["Caja abollada otra vez", case.pk],
        )
        assert "cases_textgram" not in connection.introspection.table_names(cursor)

    # Every app: going back in cases also took back the apps that depend on its later migrations.
    call_command("migrate", verbosity=0)

    with connection.cursor() as cursor:
        cursor.execute("SELECT description FROM cases_case WHERE id = %s", [case.pk])
        assert crypto.is_encrypted(cursor.fetchone()[0])
        cursor.execute("SELECT body FROM cases_message WHERE case_id = %s", [case.pk])
        assert all(crypto.is_encrypted(row[0]) for row in cursor.fetchall())
    assert found(ana, "abollada OTRA vez") == {case.reference}
    assert found(ana, "transportista seur") == {case.reference}
