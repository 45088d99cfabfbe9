"""What the migrations that encrypt existing columns run (concilia.core.fields and
concilia.core.encrypted_json): every row encrypted or, going back, decrypted, a batch at a time in
primary key order, with plain SQL (no model code involved, so the migrations keep working
whatever the models become).

    operations = [
        migrations.AlterField(...),  # the column becomes an encrypted field (text)
        migrations.RunPython(
            encrypt_rows("app_table", text=("body",), json_columns=("state",)),
            decrypt_rows("app_table", text=("body",), json_columns={"state": "{}"}),
            elidable=False,
        ),
    ]
"""

from __future__ import annotations

import json
from typing import Any

from concilia.core import crypto
from concilia.core.encrypted_json import is_empty

BATCH = 1000


def _sealed_text(value: str | None) -> str | None:
    return crypto.encrypt_text(value) if value and not crypto.is_encrypted(value) else value


def _sealed_json(value: str | None) -> str | None:
    if value is None or value == "" or crypto.is_encrypted(value):
        return value
    return "" if is_empty(json.loads(value)) else crypto.encrypt_text(value)


def _plain_text(value: str | None) -> str | None:
    return crypto.decrypt_text(value) if value and crypto.is_encrypted(value) else value


def _plain_json(empty: str) -> Any:
    def plain(value: str | None) -> str | None:
        if value == "":
            return empty
        return _plain_text(value)

    return plain


def _rewrite(
    schema_editor: Any,
    table: str,
    columns: dict[str, Any],
    indexes: dict[str, tuple[str, str]] | None = None,
) -> None:
    """Apply `columns` (name: what to make of its stored value) to every row; each of `indexes`
    (index column: (source column, purpose)) is set to the blind index of its source's plain
    value."""
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    indexes = indexes or {}
    names = list(columns)
    selected = ", ".join(quote(name) for name in names)
    assignments = ", ".join(f"{quote(name)} = %s" for name in [*names, *indexes])
    last = None
    while True:
        where, params = ("WHERE id > %s", [last]) if last is not None else ("", [])
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {selected} FROM {quote(table)} {where} "  # noqa: S608 - our names
                f"ORDER BY id LIMIT {BATCH}",
                params,
            )
            rows = cursor.fetchall()
        if not rows:
            return
        changed = []
        for pk, *values in rows:
            new = [columns[name](value) for name, value in zip(names, values, strict=True)]
            stored = dict(zip(names, values, strict=True))
            for source, purpose in indexes.values():
                # As BlindIndexField.pre_save computes it (an empty value too).
                new.append(crypto.blind_index(_plain_text(stored[source]) or "", purpose=purpose))
            if new[: len(names)] != values or indexes:
                changed.append([*new, pk])
        if changed:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {quote(table)} SET {assignments} WHERE id = %s",  # noqa: S608
                    changed,
                )
        last = rows[-1][0]


def encrypt_rows(
    table: str,
    *,
    text: tuple[str, ...] = (),
    json_columns: tuple[str, ...] = (),
    indexes: dict[str, tuple[str, str]] | None = None,
) -> Any:
    """A RunPython function that encrypts the plain values of `table`'s columns and fills the
    blind `indexes` ({index column: (source column among `text`, purpose)})."""

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "sqlite":
            # The plain values replaced here are zeroed in the file, not left in free pages.
            with schema_editor.connection.cursor() as cursor:
                cursor.execute("PRAGMA secure_delete = ON")
        columns = {name: _sealed_text for name in text}
        columns.update({name: _sealed_json for name in json_columns})
        _rewrite(schema_editor, table, columns, indexes)

    return forwards


def decrypt_rows(
    table: str, *, text: tuple[str, ...] = (), json_columns: dict[str, str] | None = None
) -> Any:
    """A RunPython function that writes `table`'s columns back in clear (going back a
    migration); `json_columns` maps each JSON column to the JSON of its empty value."""

    def backwards(apps: Any, schema_editor: Any) -> None:
        columns = {name: _plain_text for name in text}
        columns.update({name: _plain_json(empty) for name, empty in (json_columns or {}).items()})
        _rewrite(schema_editor, table, columns)

    return backwards
