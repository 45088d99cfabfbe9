# Written by hand: free text over cases through an index (see concilia/cases/search.py).
#
# SQLite: FTS5 trigram tables over cases_case (subject, description) and cases_message (body),
# external content (no copy of the text), kept in step by triggers, filled from the rows there.
# PostgreSQL: pg_trgm and GIN indexes on UPPER(column), which Django's icontains uses. When the
# extension cannot be installed (no privilege), the indexes are skipped with a warning and the
# search keeps working unindexed.

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger("concilia.cases.search")

SQLITE_TABLES = [
    "CREATE VIRTUAL TABLE cases_case_search USING fts5("
    "subject, description, content='cases_case', content_rowid='id', tokenize='trigram')",
    "CREATE VIRTUAL TABLE cases_message_search USING fts5("
    "body, content='cases_message', content_rowid='id', tokenize='trigram')",
]

# The same text as concilia.cases.search.SQLITE_TRIGGERS (a test checks they agree).
SQLITE_TRIGGERS = [
    """CREATE TRIGGER cases_case_search_insert AFTER INSERT ON cases_case BEGIN
    INSERT INTO cases_case_search (rowid, subject, description)
    VALUES (new.id, new.subject, new.description);
END""",
    """CREATE TRIGGER cases_case_search_update AFTER UPDATE OF subject, description ON cases_case
WHEN old.subject IS NOT new.subject OR old.description IS NOT new.description BEGIN
    INSERT INTO cases_case_search (cases_case_search, rowid, subject, description)
    VALUES ('delete', old.id, old.subject, old.description);
    INSERT INTO cases_case_search (rowid, subject, description)
    VALUES (new.id, new.subject, new.description);
END""",
    """CREATE TRIGGER cases_case_search_delete AFTER DELETE ON cases_case BEGIN
    INSERT INTO cases_case_search (cases_case_search, rowid, subject, description)
    VALUES ('delete', old.id, old.subject, old.description);
END""",
    """CREATE TRIGGER cases_message_search_insert AFTER INSERT ON cases_message BEGIN
    INSERT INTO cases_message_search (rowid, body) VALUES (new.id, new.body);
END""",
    """CREATE TRIGGER cases_message_search_update AFTER UPDATE OF body ON cases_message
WHEN old.body IS NOT new.body BEGIN
    INSERT INTO cases_message_search (cases_message_search, rowid, body)
    VALUES ('delete', old.id, old.body);
    INSERT INTO cases_message_search (rowid, body) VALUES (new.id, new.body);
END""",
    """CREATE TRIGGER cases_message_search_delete AFTER DELETE ON cases_message BEGIN
    INSERT INTO cases_message_search (cases_message_search, rowid, body)
    VALUES ('delete', old.id, old.body);
END""",
]

SQLITE_BACKFILL = [
    "INSERT INTO cases_case_search (cases_case_search) VALUES ('rebuild')",
    "INSERT INTO cases_message_search (cases_message_search) VALUES ('rebuild')",
]

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS cases_case_search_insert",
    "DROP TRIGGER IF EXISTS cases_case_search_update",
    "DROP TRIGGER IF EXISTS cases_case_search_delete",
    "DROP TRIGGER IF EXISTS cases_message_search_insert",
    "DROP TRIGGER IF EXISTS cases_message_search_update",
    "DROP TRIGGER IF EXISTS cases_message_search_delete",
    "DROP TABLE IF EXISTS cases_case_search",
    "DROP TABLE IF EXISTS cases_message_search",
]

# {ops} is gin_trgm_ops qualified by the schema the extension lives in.
POSTGRESQL_INDEXES = [
    "CREATE INDEX IF NOT EXISTS case_subject_trgm ON cases_case USING gin (UPPER(subject) {ops})",
    "CREATE INDEX IF NOT EXISTS case_description_trgm ON cases_case "
    "USING gin (UPPER(description) {ops})",
    "CREATE INDEX IF NOT EXISTS message_body_trgm ON cases_message USING gin (UPPER(body) {ops})",
]

# The extension stays: something else may use it, and dropping it needs the privilege.
POSTGRESQL_REVERSE = [
    "DROP INDEX IF EXISTS case_subject_trgm",
    "DROP INDEX IF EXISTS case_description_trgm",
    "DROP INDEX IF EXISTS message_body_trgm",
]


def _trigram_schema(connection):
    """The schema holding pg_trgm, installing it if need be; None when that is not allowed."""
    query = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    with connection.cursor() as cursor:
        cursor.execute(query)
        row = cursor.fetchone()
        if row is None:
            try:
                with transaction.atomic(using=connection.alias):  # a savepoint: failing is fine
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except DatabaseError as error:
                logger.warning(
                    "Text search: the pg_trgm extension could not be installed (%s). Free text "
                    "over cases works, without an index. Have a superuser run CREATE EXTENSION "
                    "pg_trgm in this database, then migrate cases to 0005 and forward again.",
                    " ".join(str(error).split()),
                )
                return None
            cursor.execute(query)
            row = cursor.fetchone()
    return row[0]


def create_search_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        try:
            schema_editor.execute(SQLITE_TABLES[0])
        except DatabaseError as error:
            raise RuntimeError(
                "Concilia's text search needs SQLite 3.34 or later built with FTS5 "
                f"(this is SQLite {connection.Database.sqlite_version}): {error}"
            ) from error
        for statement in SQLITE_TABLES[1:] + SQLITE_TRIGGERS + SQLITE_BACKFILL:
            schema_editor.execute(statement)
    elif connection.vendor == "postgresql":
        schema = _trigram_schema(connection)
        if schema is None:
            return
        for statement in POSTGRESQL_INDEXES:
            schema_editor.execute(statement.format(ops=f"{schema}.gin_trgm_ops"))


def drop_search_index(apps, schema_editor):
    connection = schema_editor.connection
    statements = {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}
    for statement in statements.get(connection.vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("cases", "0005_case_deadline_index"),
    ]

    operations = [
        migrations.RunPython(create_search_index, drop_search_index),
    ]
