# Inbound emails' sender, subject and detail, Telegram updates not yet handled, and the secrets
# Concilia must send (a mailbox's IMAP password and inbound webhook secret, a webhook endpoint's
# signing secret, a Telegram bot's webhook secret) encrypted at rest (docs/encryption.md). The
# sender is found by a keyed hash (from_index, the same as a customer's email index: the
# per-address loop limit and a customer's erasure use it). Existing rows are encrypted a batch at a
# time; going back writes them in clear again.

from django.db import migrations, models

import concilia.core.encrypted_json
import concilia.core.fields
import concilia.integrations.mail.models
import concilia.integrations.telegram.models
import concilia.integrations.webhooks.models
from concilia.core.migration_encryption import decrypt_rows, encrypt_rows

TEXT = {
    "integrations_inboundemail": ("from_address", "subject", "detail"),
    "integrations_mailbox": ("password", "inbound_secret"),
    "integrations_endpoint": ("secret",),
    "integrations_telegrambot": ("webhook_secret",),
}
SENDER_INDEX = {"from_index": ("from_address", "email")}


def encrypt(apps, schema_editor):
    for table, columns in TEXT.items():
        indexes = SENDER_INDEX if table == "integrations_inboundemail" else None
        encrypt_rows(table, text=columns, indexes=indexes)(apps, schema_editor)
    encrypt_rows("integrations_telegramupdate", json_columns=("payload",))(apps, schema_editor)


def decrypt(apps, schema_editor):
    for table, columns in TEXT.items():
        decrypt_rows(table, text=columns)(apps, schema_editor)
    payload = {"payload": "{}"}
    decrypt_rows("integrations_telegramupdate", json_columns=payload)(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0012_privacy_retention"),
        ("integrations", "0004_telegram_token_encrypted"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="inboundemail",
            name="integration_from_ad_9d0ae5_idx",
        ),
        migrations.AddField(
            model_name="inboundemail",
            name="from_index",
            field=concilia.core.fields.BlindIndexField(
                blank=True, default="", max_length=64, purpose="email", source="from_address"
            ),
        ),
        migrations.AlterField(
            model_name="endpoint",
            name="secret",
            field=concilia.core.fields.EncryptedCharField(
                default=concilia.integrations.webhooks.models.new_secret,
                max_length=100,
                verbose_name="signing secret",
            ),
        ),
        migrations.AlterField(
            model_name="inboundemail",
            name="detail",
            field=concilia.core.fields.EncryptedTextField(blank=True, verbose_name="detail"),
        ),
        migrations.AlterField(
            model_name="inboundemail",
            name="from_address",
            field=concilia.core.fields.EncryptedCharField(
                blank=True, max_length=254, verbose_name="from"
            ),
        ),
        migrations.AlterField(
            model_name="inboundemail",
            name="subject",
            field=concilia.core.fields.EncryptedCharField(
                blank=True, max_length=500, verbose_name="subject"
            ),
        ),
        migrations.AlterField(
            model_name="mailbox",
            name="inbound_secret",
            field=concilia.core.fields.EncryptedCharField(
                default=concilia.integrations.mail.models.new_inbound_secret,
                max_length=100,
                verbose_name="inbound webhook secret",
            ),
        ),
        migrations.AlterField(
            model_name="mailbox",
            name="password",
            field=concilia.core.fields.EncryptedCharField(
                blank=True, max_length=200, verbose_name="password"
            ),
        ),
        migrations.AlterField(
            model_name="telegrambot",
            name="webhook_secret",
            field=concilia.core.fields.EncryptedCharField(
                default=concilia.integrations.telegram.models.new_webhook_secret,
                editable=False,
                max_length=100,
            ),
        ),
        migrations.AlterField(
            model_name="telegramupdate",
            name="payload",
            field=concilia.core.encrypted_json.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AddIndex(
            model_name="inboundemail",
            index=models.Index(fields=["from_index", "received_at"], name="inbound_email_sender"),
        ),
        migrations.RunPython(encrypt, decrypt, elidable=False),
    ]
