# Mediation's personal data encrypted at rest (docs/encryption.md): third parties' name and email
# (the email kept once per case through its keyed hash, email_index), the parties' statements,
# the mediator's proposals and the parties' reasons for their answers. Existing rows are
# encrypted (and their email indexed) in batches; going back writes them in clear again.
from django.db import migrations, models

import concilia.core.fields
from concilia.core.migration_encryption import decrypt_rows, encrypt_rows

TEXTS = {
    "resolution_caseparty": ("name", "email"),
    "resolution_statement": ("body",),
    "resolution_proposal": ("explanation",),
    "resolution_proposalanswer": ("reason",),
}


def encrypt(apps, schema_editor):
    for table, columns in TEXTS.items():
        indexes = {"email_index": ("email", "email")} if table == "resolution_caseparty" else None
        encrypt_rows(table, text=columns, indexes=indexes)(apps, schema_editor)


def decrypt(apps, schema_editor):
    for table, columns in TEXTS.items():
        decrypt_rows(table, text=columns)(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("resolution", "0004_trends"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="caseparty", name="party_once_per_case"),
        migrations.AddField(
            model_name="caseparty",
            name="email_index",
            field=concilia.core.fields.BlindIndexField(
                max_length=64, null=True, purpose="email", source="email"
            ),
        ),
        migrations.AlterField(
            model_name="caseparty",
            name="email",
            field=concilia.core.fields.EncryptedEmailField(max_length=254, verbose_name="email"),
        ),
        migrations.AlterField(
            model_name="caseparty",
            name="name",
            field=concilia.core.fields.EncryptedCharField(max_length=200, verbose_name="name"),
        ),
        migrations.AlterField(
            model_name="proposal",
            name="explanation",
            field=concilia.core.fields.EncryptedTextField(
                verbose_name="explanation for the parties"
            ),
        ),
        migrations.AlterField(
            model_name="proposalanswer",
            name="reason",
            field=concilia.core.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="statement",
            name="body",
            field=concilia.core.fields.EncryptedTextField(verbose_name="statement"),
        ),
        migrations.RunPython(encrypt, decrypt, elidable=False),
        migrations.AlterField(
            model_name="caseparty",
            name="email_index",
            field=concilia.core.fields.BlindIndexField(
                max_length=64, purpose="email", source="email"
            ),
        ),
        migrations.AddConstraint(
            model_name="caseparty",
            constraint=models.UniqueConstraint(
                fields=("case", "email_index"), name="party_once_per_case"
            ),
        ),
    ]
