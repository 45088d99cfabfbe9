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
        logger.warning("Re-encryption done: everything uses key %s", crypto.keyring().current)
