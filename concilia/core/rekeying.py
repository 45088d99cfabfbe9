"""Key rotation: a new key put first in the key file, then everything encrypted (every encrypted
field of every model, every file of every encrypting storage) written again with it by a
background job, in batches; and the count of what still uses an older key.

The job is resumable and idempotent: it looks for values whose key id is not the current one, so
a run that stops (a deploy, a crash) leaves nothing half done and the next run carries on; each
row is written with a conditional UPDATE (only if it still holds the value read), so a change
made meanwhile by a person is never overwritten. A run works for `budget_seconds`, then queues
its continuation with where it stopped, so a large database never holds a worker for long.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.files.storage import storages
from django.db import connections, router, transaction
from django.db.models import Field, Model

from concilia.core import crypto
from concilia.core.jobs import job
from concilia.core.storage import EncryptedStorage
from concilia.core.tasks import enqueue_with_change

logger = logging.getLogger(__name__)

BATCH = 500
PLAIN = "plain"  # the key id given to values written before encryption


@dataclass(frozen=True)
class Column:
    """One encrypted field of one model, as its table holds it."""

    model: type[Model]
    field: Field

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"

    def _sql(self) -> tuple[Any, str, str, str]:
        connection = connections[router.db_for_write(self.model)]
        quote = connection.ops.quote_name
        return (
            connection,
            quote(self.model._meta.db_table),
            quote(self.field.column),
            quote(self.model._meta.pk.column),
        )

    def count_by_key(self) -> Counter[str]:
        """How many values each key id wrote ("plain": not encrypted yet); empty values aside."""
        connection, table, column, _pk = self._sql()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT CASE WHEN substr({column}, 1, %s) = %s "  # noqa: S608 - names from _meta
                f"THEN substr({column}, %s, %s) ELSE %s END AS key_id, COUNT(*) FROM {table} "
                f"WHERE {column} IS NOT NULL AND {column} <> '' GROUP BY 1",
                [
                    len(crypto.PREFIX),
                    crypto.PREFIX,
                    len(crypto.PREFIX) + 1,
                    crypto.KEY_ID_LENGTH,
                    PLAIN,
                ],
            )
            return Counter(dict(cursor.fetchall()))

    def reencrypt_batch(self, *, after: Any) -> tuple[int, Any]:
        """Write again with the current key up to BATCH values, of rows after the primary key
        `after`, that another key (or none) wrote. Returns how many were written and the last
        primary key looked at (None when the column is done)."""
        connection, table, column, pk = self._sql()
        prefix = crypto.keyring().prefix()
        where = f"{column} IS NOT NULL AND {column} <> '' AND substr({column}, 1, %s) <> %s"
        params: list[Any] = [len(prefix), prefix]
        if after is not None:
            where += f" AND {pk} > %s"
            params.append(after)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk}, {column} FROM {table} WHERE {where} "  # noqa: S608 - names from _meta
                f"ORDER BY {pk} LIMIT {BATCH}",
                params,
            )
            rows = cursor.fetchall()
        written = 0
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for key, old in rows:
                try:
                    new = crypto.reencrypt_text(old)
                except crypto.DecryptionError as exc:
                    logger.error("%s of row %s cannot be re-encrypted: %s", self.label, key, exc)
                    continue
                # Only if it still holds what was read: a change made meanwhile stays.
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s",  # noqa: S608
                    [new, key, old],
                )
                written += cursor.rowcount
        return written, (rows[-1][0] if len(rows) == BATCH else None)


def encrypted_columns() -> list[Column]:
    """Every encrypted field of every installed model (concilia.core.fields)."""
    return [
        Column(model, model_field)
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
        for model_field in model._meta.concrete_fields
        if getattr(model_field, "encrypted", False)
    ]


def encrypted_storages() -> dict[str, EncryptedStorage]:
    """The storages of settings.STORAGES that encrypt, by alias."""
    found = {}
    for alias in settings.STORAGES:
        storage = storages[alias]
        if isinstance(storage, EncryptedStorage):
            found[alias] = storage
    return found


@dataclass
class KeyUse:
    """What each key id wrote: values by column, files by storage."""

    columns: dict[str, Counter[str]] = field(default_factory=dict)
    files: dict[str, Counter[str]] = field(default_factory=dict)

    def total(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in [*self.columns.values(), *self.files.values()]:
            total.update(counts)
        return total

    def not_current(self) -> int:
        """Values and files that an older key wrote, or that are not encrypted yet."""
        current = crypto.keyring().current
        return sum(n for key, n in self.total().items() if key != current)


def key_use() -> KeyUse:
    use = KeyUse()
    for column in encrypted_columns():
        use.columns[column.label] = column.count_by_key()
    for alias, storage in encrypted_storages().items():
        counts: Counter[str] = Counter()
        for name in storage.walk():
            counts[storage.stored_key_id(name) or PLAIN] += 1
        use.files[alias] = counts
    return use


# -- actions ---------------------------------------------------------------------------------


def add_key_to_file() -> str:
    """Put a new key first in the key file (the others stay, to decrypt); its id. Raises
    KeysInSettings when the keys come from settings: then the operator changes them."""
    path = crypto.key_file()
    if path is None:
        raise KeysInSettings
    keys = crypto.read_key_file(path) if path.exists() else []
    key = crypto.new_key()
    crypto.write_key_file(path, [key, *keys])
    crypto.forget_keys()
    logger.warning(
        "Encryption key %s added to %s; it encrypts from now on", crypto.key_id(key), path
    )
    _audit_key_operation("rotate_key", key=crypto.key_id(key))
    return crypto.key_id(key)


class KeysInSettings(Exception):
    """The keys come from CONCILIA_ENCRYPTION_KEYS: only the operator can change them."""


def retire_unused_keys() -> list[str]:
    """Remove from the key file every older key that no value or file uses any more; their ids.
    Only safe once every process runs with the current key (they read the file again within
    seconds) and no backup that must stay readable needs them."""
    path = crypto.key_file()
    if path is None:
        raise KeysInSettings
    in_use = set(key_use().total())
    current = crypto.keyring().current
    keys = crypto.read_key_file(path)
    kept = [key for key in keys if crypto.key_id(key) in in_use | {current}]
    retired = [crypto.key_id(key) for key in keys if key not in kept]
    if retired:
        crypto.write_key_file(path, kept)
        crypto.forget_keys()
        _audit_key_operation("retire_keys", keys=retired, current=current)
    return retired


def queue_reencryption() -> None:
    """Queue the job that writes everything again with the current key."""
    with transaction.atomic():
        enqueue_with_change(reencrypt_everything)


# -- the job ---------------------------------------------------------------------------------


def reencrypt(
    *,
    cursors: dict[str, Any] | None = None,
    budget_seconds: float | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any] | None:
    """Write everything again with the current key, from `cursors` (where an earlier run
    stopped: the last primary key of each column, the last name of each storage, and what is
    done) on, for at most `budget_seconds` (None: until done). Returns the cursors to carry on
    from, or None when everything is done. `progress(what, count)` hears of each batch."""
    cursors = {"after": {}, "done": [], **(cursors or {})}
    after: dict[str, Any] = dict(cursors["after"])
    done: list[str] = list(cursors["done"])
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds

    def stopped() -> dict[str, Any] | None:
        if deadline is not None and time.monotonic() >= deadline:
            return {"after": after, "done": done}
        return None

    for column in encrypted_columns():
        if column.label in done:
            continue
        while True:  # a batch at least, then as many as the time allows
            written, last = column.reencrypt_batch(after=after.get(column.label))
            if progress:
                progress(column.label, written)
            if last is None:
                break
            after[column.label] = last
            if (left := stopped()) is not None:
                return left
        done.append(column.label)
    for alias, storage in encrypted_storages().items():
        label = f"files:{alias}"
        if label in done:
            continue
        for name in storage.walk(after=after.get(label, "")):
            try:
                changed = storage.reencrypt(name)
            except FileNotFoundError:
                changed = False  # deleted meanwhile
            except crypto.DecryptionError as exc:
                logger.error("File %s in %s cannot be re-encrypted: %s", name, alias, exc)
                changed = False
            after[label] = name
            if progress:
                progress(label, int(changed))
            if (left := stopped()) is not None:
                return left
        done.append(label)
    return None


@job()
def reencrypt_everything(
    *, cursors: dict[str, Any] | None = None, budget_seconds: float = 30
) -> None:
    """Background key rotation: a slice of `reencrypt`, then the next slice queued."""
    left = reencrypt(cursors=cursors, budget_seconds=budget_seconds)
    if left is not None:
        with transaction.atomic():
            enqueue_with_change(reencrypt_everything, cursors=left, budget_seconds=budget_seconds)
    else:
        reencryption_done()


def reencryption_done() -> None:
    """Record that everything uses the current key."""
    logger.warning("Re-encryption done: everything uses key %s", crypto.keyring().current)
    _audit_key_operation("reencrypt_done", key=crypto.keyring().current)


# -- blind index keys ------------------------------------------------------------------------
#
# `concilia keys rotate-index`: a new index key first in the index key file (the old one stays,
# so look-ups accept a hash under either), then a job computes every blind index again with the
# new key (every BlindIndexField and WordIndexField of every model, found from their fields, and
# each index an app registers, such as the cases' text grams), resumably, then removes the old
# key from the file. Every step is recorded in the audit log.

# name -> batch(after=...) -> (how many done, where to carry on from; None when done)
IndexBatch = Callable[..., tuple[int, Any]]
_REGISTERED_INDEXES: dict[str, IndexBatch] = {}


def register_index(name: str, batch: IndexBatch) -> None:
    """An app's own blind index, which the index key rotation computes again: `batch(after=...)`
    writes a batch with the current index key and says where to carry on (an app sits above core:
    it registers in its AppConfig.ready)."""
    _REGISTERED_INDEXES[name] = batch


@dataclass(frozen=True)
class DerivedColumn:
    """A blind index column (BlindIndexField, WordIndexField) and the field it is computed from."""

    model: type[Model]
    field: Any  # a concilia.core.fields._DerivedIndex

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"

    def recompute_batch(self, *, after: Any) -> tuple[int, Any]:
        """Compute again, with the current index key, the index of up to BATCH rows after the
        primary key `after`; write those that differ, only if their source is still what was
        read. Returns how many were written and the last primary key (None when done)."""
        source = self.model._meta.get_field(self.field.source)
        connection = connections[router.db_for_write(self.model)]
        quote = connection.ops.quote_name
        table, pk = quote(self.model._meta.db_table), quote(self.model._meta.pk.column)
        column, source_column = quote(self.field.column), quote(source.column)
        where, params = ("", []) if after is None else (f"WHERE {pk} > %s", [after])
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk}, {source_column}, {column} FROM {table} {where} "  # noqa: S608
                f"ORDER BY {pk} LIMIT {BATCH}",
                params,
            )
            rows = cursor.fetchall()
        written = 0
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for key, raw, old in rows:
                try:
                    plain = crypto.decrypt_text(raw) if raw and crypto.is_encrypted(raw) else raw
                except crypto.DecryptionError as exc:
                    logger.error("%s of row %s cannot be recomputed: %s", self.label, key, exc)
                    continue
                new = self.field.index_of(plain)
                new = None if new is None else str(new)
                if new == old:
                    continue
                same = f"{source_column} IS NULL" if raw is None else f"{source_column} = %s"
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {same}",  # noqa: S608
                    [new, key] + ([] if raw is None else [raw]),
                )
                written += cursor.rowcount
        return written, (rows[-1][0] if len(rows) == BATCH else None)


def derived_index_columns() -> list[DerivedColumn]:
    """Every blind index column of every installed model (concilia.core.fields)."""
    from concilia.core.fields import _DerivedIndex

    return [
        DerivedColumn(model, model_field)
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
        for model_field in model._meta.concrete_fields
        if isinstance(model_field, _DerivedIndex)
    ]


def index_steps() -> dict[str, IndexBatch]:
    """What an index key rotation computes again, by name, in order."""
    steps: dict[str, IndexBatch] = {c.label: c.recompute_batch for c in derived_index_columns()}
    return {**steps, **_REGISTERED_INDEXES}


class IndexKeyInSettings(Exception):
    """The index key comes from CONCILIA_BLIND_INDEX_KEY: only the operator can change it."""


def _audit_key_operation(operation: str, **detail: Any) -> None:
    from concilia.core import audit

    with transaction.atomic():
        audit.record(audit.CHANGE, detail={"operation": operation, **detail})


def add_index_key_to_file() -> str:
    """Put a new index key first in the index key file (the old ones stay until the rotation job
    is done, so that look-ups find rows not computed again yet); its id."""
    path = crypto.index_key_file()
    if path is None:
        raise IndexKeyInSettings
    old = crypto.read_key_file(path) if path.exists() else []
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.replace(crypto._write_aside(path, _index_key_file_text([secret, *old])), path)
    crypto.forget_keys()
    new_id = crypto.index_key_ids()[0]
    logger.warning("Blind index key %s added to %s; it writes from now on", new_id, path)
    _audit_key_operation("rotate_index_key", key=new_id, previous=list(crypto.index_key_ids()[1:]))
    return new_id


def _index_key_file_text(keys: list[str]) -> str:
    return (
        "# Concilia's blind index keys (docs/encryption.md): the first writes; a second one\n"
        "# only while `concilia keys rotate-index` computes the indexes again.\n"
        + "".join(f"{key}\n" for key in keys)
    )


def retire_old_index_keys() -> list[str]:
    """Leave only the current index key in the file (once every index uses it); the removed ids."""
    path = crypto.index_key_file()
    if path is None:
        raise IndexKeyInSettings
    keys = crypto.read_key_file(path)
    retired = list(crypto.index_key_ids()[1:])
    if len(keys) > 1:
        os.replace(crypto._write_aside(path, _index_key_file_text(keys[:1])), path)
        crypto.forget_keys()
        _audit_key_operation("retire_index_keys", keys=retired, current=crypto.index_key_ids()[0])
    return retired


def recompute_indexes(
    *,
    cursors: dict[str, Any] | None = None,
    budget_seconds: float | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any] | None:
    """Compute every blind index again with the current index key, from `cursors` on (as
    `reencrypt`), for at most `budget_seconds`. Returns the cursors to carry on from, or None
    when everything is done."""
    cursors = {"after": {}, "done": [], **(cursors or {})}
    after: dict[str, Any] = dict(cursors["after"])
    done: list[str] = list(cursors["done"])
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    for label, batch in index_steps().items():
        if label in done:
            continue
        while True:
            count, last = batch(after=after.get(label))
            if progress:
                progress(label, count)
            if last is None:
                break
            after[label] = last
            if deadline is not None and time.monotonic() >= deadline:
                return {"after": after, "done": done}
        done.append(label)
    return None


def _settle_index_keys() -> None:
    """Let every process notice a new index key (they look at the file every RECHECK_SECONDS)
    before computing: a row a slow process writes with the old key meanwhile is then redone."""
    path = crypto.index_key_file()
    if path is None or not path.exists():
        return
    age = time.time() - path.stat().st_mtime
    if age < 2 * crypto.RECHECK_SECONDS:
        time.sleep(2 * crypto.RECHECK_SECONDS - age)


def finish_index_rotation() -> list[str]:
    """After the indexes are computed again: retire the old index keys and record it."""
    _audit_key_operation("reindex_done", key=crypto.index_key_ids()[0])
    return retire_old_index_keys()


def queue_index_rotation() -> None:
    """Queue the job that computes every blind index again, then retires the old index key."""
    with transaction.atomic():
        enqueue_with_change(recompute_every_index)


@job()
def recompute_every_index(
    *, cursors: dict[str, Any] | None = None, budget_seconds: float = 30
) -> None:
    """Background index key rotation: a slice of `recompute_indexes`, then the next slice
    queued; the last one retires the old index key."""
    if cursors is None:
        _settle_index_keys()
    left = recompute_indexes(cursors=cursors, budget_seconds=budget_seconds)
    if left is not None:
        with transaction.atomic():
            enqueue_with_change(recompute_every_index, cursors=left, budget_seconds=budget_seconds)
        return
    retired = finish_index_rotation()
    logger.warning(
        "Blind indexes computed again with key %s; retired %s", crypto.index_key_ids()[0], retired
    )
