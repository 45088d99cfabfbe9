# Cases' subject and description and messages' bodies encrypted at rest (docs/encryption.md); free
# text found through a blind index of keyed trigram hashes (cases_textgram, concilia/cases/search.py)
# in place of the FTS5 tables (SQLite) and pg_trgm indexes (PostgreSQL) of 0006, which read the
# plain columns.

import importlib

import django.db.models.deletion
from django.db import migrations, models

import concilia.core.fields
from concilia.core import crypto

BATCH = 1000
PURPOSE = "case-text-gram"  # concilia.cases.search.PURPOSE

text_search = importlib.import_module("concilia.cases.migrations.0006_text_search")


def _plain(value):
    return crypto.decrypt_text(value) if value and crypto.is_encrypted(value) else value


def _sealed(value):
    return crypto.encrypt_text(value) if value and not crypto.is_encrypted(value) else value


def _hashes(texts):
    pieces = set()
    for text in texts:
        pieces |= crypto.grams(crypto.fold_text(text or ""))
    return crypto.gram_hashes(pieces, purpose=PURPOSE)


def overwrite_freed_space(apps, schema_editor):
    """SQLite: the plain texts this migration replaces are zeroed, not left in free pages."""
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("PRAGMA secure_delete = ON")


def _case_batches(connection):
    """Every case (id, subject, description) with its messages (id, body), a batch at a time."""
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, subject, description FROM cases_case WHERE id > %s ORDER BY id "
                "LIMIT %s",
                [last, BATCH],
            )
            cases = cursor.fetchall()
            if not cases:
                return
            ids = [row[0] for row in cases]
            cursor.execute(
                "SELECT case_id, id, body FROM cases_message "  # noqa: S608 - placeholders
                f"WHERE case_id IN ({', '.join(['%s'] * len(ids))}) ORDER BY id",
                ids,
            )
            messages = {}
            for case_id, pk, body in cursor.fetchall():
                messages.setdefault(case_id, []).append((pk, body))
        yield cases, messages
        last = ids[-1]


def encrypt_texts(apps, schema_editor):
    connection = schema_editor.connection
    for cases, messages in _case_batches(connection):
        case_rows, message_rows, grams = [], [], []
        for pk, subject, description in cases:
            bodies = messages.get(pk, [])
            texts = [_plain(subject), _plain(description), *(_plain(b) for _m, b in bodies)]
            case_rows.append((_sealed(subject), _sealed(description), pk))
            message_rows += [(_sealed(body), message_pk) for message_pk, body in bodies]
            grams += [(pk, gram) for gram in _hashes(texts)]
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE cases_case SET subject = %s, description = %s WHERE id = %s", case_rows
            )
            cursor.executemany("UPDATE cases_message SET body = %s WHERE id = %s", message_rows)
            for start in range(0, len(grams), 500):
                chunk = grams[start : start + 500]
                cursor.execute(
                    "INSERT INTO cases_textgram (case_id, gram) VALUES "  # noqa: S608 - placeholders
                    + ", ".join(["(%s, %s)"] * len(chunk)),
                    [value for row in chunk for value in row],
                )


def decrypt_texts(apps, schema_editor):
    connection = schema_editor.connection
    for cases, messages in _case_batches(connection):
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE cases_case SET subject = %s, description = %s WHERE id = %s",
                [(_plain(s), _plain(d), pk) for pk, s, d in cases],
            )
            cursor.executemany(
                "UPDATE cases_message SET body = %s WHERE id = %s",
                [(_plain(b), m) for bodies in messages.values() for m, b in bodies],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0012_privacy_retention"),
    ]

    operations = [
        migrations.RunPython(overwrite_freed_space, migrations.RunPython.noop, elidable=False),
        # The plain-text indexes go first: their triggers and expressions read the columns.
        migrations.RunPython(
            text_search.drop_search_index, text_search.create_search_index, elidable=False
        ),
        migrations.AlterField(
            model_name="case",
            name="subject",
            field=concilia.core.fields.EncryptedCharField(max_length=200, verbose_name="subject"),
        ),
        migrations.AlterField(
            model_name="case",
            name="description",
            field=concilia.core.fields.EncryptedTextField(verbose_name="description"),
        ),
        migrations.AlterField(
            model_name="message",
            name="body",
            field=concilia.core.fields.EncryptedTextField(verbose_name="message"),
        ),
        migrations.CreateModel(
            name="TextGram",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "case",
                        "gram",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="cases.case",
                    ),
                ),
                ("gram", models.BigIntegerField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["gram", "case"], name="textgram_gram_case"),
                ],
            },
        ),
        migrations.RunPython(encrypt_texts, decrypt_texts, elidable=False),
    ]
