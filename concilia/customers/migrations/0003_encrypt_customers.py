# Customers' name, email and phone encrypted at rest (docs/encryption.md); the email found by a
# keyed hash (email_index, unique in place of the address) and the name by its words.

from django.db import migrations

import concilia.core.fields
from concilia.core import crypto

BATCH = 1000
TABLE = "customers_customer"


def _plain(value):
    return crypto.decrypt_text(value) if value and crypto.is_encrypted(value) else value


def _sealed(value):
    return crypto.encrypt_text(value) if value and not crypto.is_encrypted(value) else value


def _batches(connection, columns):
    """Every customer row (id first), a batch at a time in id order."""
    table = connection.ops.quote_name(TABLE)
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {', '.join(columns)} FROM {table} WHERE id > %s ORDER BY id LIMIT %s",
                [last, BATCH],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _update(connection, columns, rows):
    table = connection.ops.quote_name(TABLE)
    assignments = ", ".join(f"{column} = %s" for column in columns)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", rows)


def overwrite_freed_space(apps, schema_editor):
    """SQLite: the plain values this migration replaces are zeroed, not left in free pages of the
    database file (Debian's SQLite does so by default, other builds may not)."""
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("PRAGMA secure_delete = ON")


def encrypt_customers(apps, schema_editor):
    connection = schema_editor.connection
    words = apps.get_model("customers", "Customer")._meta.get_field("name_words")
    for rows in _batches(connection, ("name", "email", "phone")):
        changed = []
        for pk, name, email, phone in rows:
            plain_name, plain_email = _plain(name), _plain(email)
            changed.append(
                (
                    _sealed(name),
                    _sealed(email),
                    _sealed(phone),
                    crypto.blind_index(plain_email, purpose="email"),
                    words.index_of(plain_name),
                    pk,
                )
            )
        _update(connection, ("name", "email", "phone", "email_index", "name_words"), changed)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT email_index FROM {connection.ops.quote_name(TABLE)} "
            "GROUP BY email_index HAVING COUNT(*) > 1"
        )
        clashes = [row[0] for row in cursor.fetchall()]
    if clashes:
        Customer = apps.get_model("customers", "Customer")
        ids = sorted(Customer.objects.filter(email_index__in=clashes).values_list("pk", flat=True))
        raise RuntimeError(
            "Customers share an email address written in different case (ids "
            f"{', '.join(map(str, ids))}): change one address (or merge the customers) in the "
            "previous version, then migrate again."
        )


def decrypt_customers(apps, schema_editor):
    connection = schema_editor.connection
    for rows in _batches(connection, ("name", "email", "phone")):
        plain = [
            (_plain(name), _plain(email), _plain(phone), pk) for pk, name, email, phone in rows
        ]
        _update(connection, ("name", "email", "phone"), plain)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_first_privacy_notice"),
    ]

    operations = [
        migrations.RunPython(overwrite_freed_space, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="customer",
            name="email_index",
            field=concilia.core.fields.BlindIndexField(
                max_length=64, null=True, purpose="email", source="email"
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="name_words",
            field=concilia.core.fields.WordIndexField(
                blank=True, default="", purpose="name-word", source="name"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="email",
            field=concilia.core.fields.EncryptedEmailField(max_length=254, verbose_name="email"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="name",
            field=concilia.core.fields.EncryptedCharField(max_length=200, verbose_name="name"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="phone",
            field=concilia.core.fields.EncryptedCharField(
                blank=True, max_length=40, verbose_name="phone"
            ),
        ),
        migrations.RunPython(encrypt_customers, decrypt_customers, elidable=False),
        migrations.AlterField(
            model_name="customer",
            name="email_index",
            field=concilia.core.fields.BlindIndexField(
                max_length=64, purpose="email", source="email", unique=True
            ),
        ),
    ]
