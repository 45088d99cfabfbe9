"""Free text over a case's subject, description and every message, found through an index.

The meaning is a case-insensitive substring match (accents count: "devolucion" does not find
"devolución"), internal notes included. How the index serves it depends on the database:

- SQLite: two FTS5 tables with the trigram tokenizer, `cases_case_search` (subject, description)
  and `cases_message_search` (body). They keep no copy of the text (external content: they read
  it from cases_case and cases_message) and triggers on those tables keep them in step. A quoted
  phrase of three characters or more MATCHes exactly the rows that contain it, folding case for
  every alphabet (SQLite's own LIKE folds ASCII only).
- PostgreSQL: GIN trigram indexes (pg_trgm) on UPPER(subject), UPPER(description) and UPPER(body)
  serve Django's `icontains`, which is written UPPER(column) LIKE UPPER(pattern). Without the
  extension the same query runs unindexed.

Text shorter than three characters has no trigram to look up: it is matched by a scan, as before.
Migration 0006_text_search creates all of this. Should a SQLite search table ever disagree with
its rows, `INSERT INTO cases_case_search (cases_case_search) VALUES ('rebuild')` (likewise for
cases_message_search) indexes them all again.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from concilia.cases.models import Case, Message

logger = logging.getLogger(__name__)

# A trigram index finds nothing shorter than one trigram.
MIN_INDEXED_LENGTH = 3

# The case ids of every row that contains the phrase, in the case's text or in a message.
_SQLITE_MATCHING_CASES = (
    "SELECT rowid FROM cases_case_search WHERE cases_case_search MATCH %s "
    "UNION ALL "
    "SELECT cases_message.case_id FROM cases_message_search "
    "JOIN cases_message ON cases_message.id = cases_message_search.rowid "
    "WHERE cases_message_search MATCH %s"
)

# The triggers that keep the SQLite search tables in step, as migration 0006 creates them (a test
# checks the two agree), with the search table each one writes to.
SQLITE_TRIGGERS: dict[str, tuple[str, str]] = {
    "cases_case_search_insert": (
        "cases_case_search",
        """CREATE TRIGGER cases_case_search_insert AFTER INSERT ON cases_case BEGIN
    INSERT INTO cases_case_search (rowid, subject, description)
    VALUES (new.id, new.subject, new.description);
END""",
    ),
    "cases_case_search_update": (
        "cases_case_search",
        """CREATE TRIGGER cases_case_search_update AFTER UPDATE OF subject, description ON cases_case
WHEN old.subject IS NOT new.subject OR old.description IS NOT new.description BEGIN
    INSERT INTO cases_case_search (cases_case_search, rowid, subject, description)
    VALUES ('delete', old.id, old.subject, old.description);
    INSERT INTO cases_case_search (rowid, subject, description)
    VALUES (new.id, new.subject, new.description);
END""",
    ),
    "cases_case_search_delete": (
        "cases_case_search",
        """CREATE TRIGGER cases_case_search_delete AFTER DELETE ON cases_case BEGIN
    INSERT INTO cases_case_search (cases_case_search, rowid, subject, description)
    VALUES ('delete', old.id, old.subject, old.description);
END""",
    ),
    "cases_message_search_insert": (
        "cases_message_search",
        """CREATE TRIGGER cases_message_search_insert AFTER INSERT ON cases_message BEGIN
    INSERT INTO cases_message_search (rowid, body) VALUES (new.id, new.body);
END""",
    ),
    "cases_message_search_update": (
        "cases_message_search",
        """CREATE TRIGGER cases_message_search_update AFTER UPDATE OF body ON cases_message
WHEN old.body IS NOT new.body BEGIN
    INSERT INTO cases_message_search (cases_message_search, rowid, body)
    VALUES ('delete', old.id, old.body);
    INSERT INTO cases_message_search (rowid, body) VALUES (new.id, new.body);
END""",
    ),
    "cases_message_search_delete": (
        "cases_message_search",
        """CREATE TRIGGER cases_message_search_delete AFTER DELETE ON cases_message BEGIN
    INSERT INTO cases_message_search (cases_message_search, rowid, body)
    VALUES ('delete', old.id, old.body);
END""",
    ),
}


def fts_phrase(text: str) -> str:
    """`text` as one FTS5 phrase: inside double quotes every character is literal but the quote."""
    return '"' + text.replace('"', '""') + '"'


def matching_case_ids(text: str) -> RawSQL | QuerySet[Any]:
    """The ids of the cases whose subject, description or any message (internal notes included)
    contains `text`, ignoring case: a subquery for `cases.filter(pk__in=...)`."""
    connection = connections[router.db_for_read(Case)]
    if connection.vendor == "sqlite" and len(text) >= MIN_INDEXED_LENGTH:
        phrase = fts_phrase(text)
        return RawSQL(_SQLITE_MATCHING_CASES, [phrase, phrase])  # noqa: S611 - constant SQL
    # PostgreSQL's trigram indexes serve these lookups as they are (see the module's docstring).
    in_case = Case.objects.filter(Q(subject__icontains=text) | Q(description__icontains=text))
    in_messages = Message.objects.filter(body__icontains=text)
    return in_case.order_by().values("pk").union(in_messages.order_by().values("case_id"))


def restore_sqlite_triggers(using: str) -> list[str]:
    """Put back the search triggers a table rebuild dropped, and re-index what they serve.

    Django's SQLite schema editor rebuilds a table (copy, drop, rename) for most field and
    constraint changes, and dropping a table drops its triggers; this runs after every migrate
    and is a no-op while the triggers are there. Returns the names of the triggers put back.
    """
    connection = connections[using]
    if connection.vendor != "sqlite":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE tbl_name IN "
            "('cases_case', 'cases_message', 'cases_case_search', 'cases_message_search')"
        )
        present = {row[0] for row in cursor.fetchall()}
    if not {"cases_case_search", "cases_message_search"} <= present:
        return []  # migration 0006 is not applied
    missing = [name for name in SQLITE_TRIGGERS if name not in present]
    if not missing:
        return []
    tables = sorted({SQLITE_TRIGGERS[name][0] for name in missing})
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for name in missing:
            cursor.execute(SQLITE_TRIGGERS[name][1])
        for table in tables:
            # Rows may have changed while the triggers were gone: index them all again.
            cursor.execute(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")  # noqa: S608 - our names
    logger.warning(
        "Text search: put back the triggers %s (dropped by a table rebuild) and re-indexed %s",
        ", ".join(missing),
        ", ".join(tables),
    )
    return missing
