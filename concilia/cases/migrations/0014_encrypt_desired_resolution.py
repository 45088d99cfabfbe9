"""The customer's desired resolution is free text they wrote: encrypted like the description
(docs/encryption.md). Existing rows are encrypted in batches; going back writes them in clear."""

from django.db import migrations

import concilia.core.fields
from concilia.core.migration_encryption import decrypt_rows, encrypt_rows


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0013_encrypt_case_text"),
    ]

    operations = [
        migrations.AlterField(
            model_name="case",
            name="desired_resolution",
            field=concilia.core.fields.EncryptedTextField(
                blank=True, verbose_name="desired resolution"
            ),
        ),
        migrations.RunPython(
            encrypt_rows("cases_case", text=("desired_resolution",)),
            decrypt_rows("cases_case", text=("desired_resolution",)),
            elidable=False,
        ),
    ]
