"""The database triggers that keep the audit log append-only: which are missing, and putting
them back after a migrate.

Migration core 0006 creates them. Django's SQLite schema editor rebuilds a table (copy, drop,
rename) for most field and constraint changes, and dropping a table drops its triggers; someone
with database access may drop them too. `restore` runs after every migrate and is a no-op while
they are there; `missing` serves the system check and `concilia audit verify`, which warn.
"""

from __future__ import annotations

import importlib
import logging

from django.db import connections, transaction

logger = logging.getLogger("concilia.audit")

# The SQL lives in the migration that first ran it: one text for both.
_MIGRATION = importlib.import_module("concilia.core.migrations.0006_audit_log")

TRIGGERS = ("core_auditentry_append_only", "core_auditchainhead_forward")
_TABLES = ("core_auditentry", "core_auditchainhead")


def missing(using: str = "default") -> list[str]:
    """The audit triggers the database lacks (none on a database other than SQLite and
    PostgreSQL, or before migration core 0006 made the tables)."""
    connection = connections[using]
    if connection.vendor not in ("sqlite", "postgresql"):
        return []
    with connection.cursor() as cursor:
        if not set(_TABLES) <= set(connection.introspection.table_names(cursor)):
            return []
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s)",
                list(_TABLES),
            )
        else:
            cursor.execute(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relname IN (%s, %s) "
                "AND pg_table_is_visible(c.oid)",
                list(_TABLES),
            )
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in TRIGGERS if name not in present]


def restore(using: str = "default") -> list[str]:
    """Put back the audit triggers that are missing; the names of those put back."""
    absent = missing(using)
    if not absent:
        return []
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Functions and triggers are made together: drop what is left of them, make all.
            cursor.execute(_MIGRATION.POSTGRESQL_DROP)
            cursor.execute(_MIGRATION.POSTGRESQL_TRIGGERS)
        else:
            for statement in _MIGRATION.SQLITE_DROP:
                cursor.execute(statement)
            for statement in _MIGRATION.SQLITE_TRIGGERS:
                cursor.execute(statement)
    logger.warning(
        "Audit log: put back the triggers %s (dropped by a table rebuild or by hand)",
        ", ".join(absent),
    )
    return absent
