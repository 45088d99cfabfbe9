# The assistant's texts encrypted at rest (docs/encryption.md): the transcript, the dialogue's
# memory, the NLU's reading of each message, the survey's comment, the names of files sent in the
# chat, hand-over details and snapshots, and the technician's report. Existing rows are encrypted
# a batch at a time; going back writes them in clear again.

from django.db import migrations

import concilia.core.encrypted_json
import concilia.core.fields
from concilia.core.migration_encryption import decrypt_rows, encrypt_rows

# table: (text columns, JSON columns)
TABLES = {
    "assistant_chatmessage": (("body",), ("understanding",)),
    "assistant_chatupload": (("original_name",), ()),
    "assistant_conversation": (("csat_comment",), ("state",)),
    "assistant_handover": (("detail",), ("snapshot",)),
    "assistant_technicianvisit": (("report",), ()),
}


def encrypt(apps, schema_editor):
    for table, (text, json_columns) in TABLES.items():
        encrypt_rows(table, text=text, json_columns=json_columns)(apps, schema_editor)


def decrypt(apps, schema_editor):
    for table, (text, json_columns) in TABLES.items():
        empty = dict.fromkeys(json_columns, "{}")
        decrypt_rows(table, text=text, json_columns=empty)(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0003_telegram_channel"),
    ]

    operations = [
        migrations.AlterField(
            model_name="chatmessage",
            name="body",
            field=concilia.core.fields.EncryptedTextField(verbose_name="message"),
        ),
        migrations.AlterField(
            model_name="chatmessage",
            name="understanding",
            field=concilia.core.encrypted_json.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="chatupload",
            name="original_name",
            field=concilia.core.fields.EncryptedCharField(max_length=255),
        ),
        migrations.AlterField(
            model_name="conversation",
            name="csat_comment",
            field=concilia.core.fields.EncryptedTextField(
                blank=True, verbose_name="satisfaction comment"
            ),
        ),
        migrations.AlterField(
            model_name="conversation",
            name="state",
            field=concilia.core.encrypted_json.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="handover",
            name="detail",
            field=concilia.core.fields.EncryptedCharField(
                blank=True, max_length=300, verbose_name="detail"
            ),
        ),
        migrations.AlterField(
            model_name="handover",
            name="snapshot",
            field=concilia.core.encrypted_json.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="technicianvisit",
            name="report",
            field=concilia.core.fields.EncryptedTextField(verbose_name="report for the technician"),
        ),
        migrations.RunPython(encrypt, decrypt, elidable=False),
    ]
