# A Telegram bot's token is encrypted by concilia.core.crypto (docs/encryption.md) instead of the
# hand-made sealing keyed from SECRET_KEY it had: tokens sealed that way ("s1:…") are opened here
# with SECRET_KEY or SECRET_KEY_FALLBACKS and encrypted again. The old construction is kept in
# this file only, to read (and, going back, write) those values.

import base64
import hashlib
import hmac
import logging
import os

from django.conf import settings
from django.db import migrations

import concilia.core.fields
from concilia.core import crypto

logger = logging.getLogger(__name__)

LEGACY = "s1"
_PURPOSE = "telegram-bot-token"
_NONCE = 16
_TAG = 32


def _legacy_keys(secret):
    root = hmac.new(secret.encode(), f"concilia.sealing:{_PURPOSE}".encode(), hashlib.sha256)
    root = root.digest()
    return (
        hmac.new(root, b"encrypt", hashlib.sha256).digest(),
        hmac.new(root, b"authenticate", hashlib.sha256).digest(),
    )


def _xor_keystream(key, nonce, data):
    blocks = (len(data) + 31) // 32
    stream = b"".join(
        hmac.new(key, nonce + n.to_bytes(4, "big"), hashlib.sha256).digest() for n in range(blocks)
    )
    return bytes(a ^ b for a, b in zip(data, stream[: len(data)], strict=True))


def open_legacy(sealed):
    """The token a legacy sealed value holds, or None when no configured SECRET_KEY opens it."""
    try:
        raw = base64.urlsafe_b64decode(sealed.partition(":")[2].encode())
    except ValueError:
        return None
    if len(raw) < _NONCE + _TAG:
        return None
    nonce, cipher, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        encrypt_key, mac_key = _legacy_keys(secret)
        expected = hmac.new(mac_key, LEGACY.encode() + nonce + cipher, hashlib.sha256).digest()
        if hmac.compare_digest(expected, tag):
            return _xor_keystream(encrypt_key, nonce, cipher).decode()
    return None


def seal_legacy(token):
    encrypt_key, mac_key = _legacy_keys(settings.SECRET_KEY)
    nonce = os.urandom(_NONCE)
    cipher = _xor_keystream(encrypt_key, nonce, token.encode())
    tag = hmac.new(mac_key, LEGACY.encode() + nonce + cipher, hashlib.sha256).digest()
    return f"{LEGACY}:" + base64.urlsafe_b64encode(nonce + cipher + tag).decode()


def _rows(schema_editor):
    table = schema_editor.connection.ops.quote_name("integrations_telegrambot")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, api_token FROM {table}")
        return table, cursor.fetchall()


def encrypt_tokens(apps, schema_editor):
    table, rows = _rows(schema_editor)
    for pk, stored in rows:
        if not stored.startswith(f"{LEGACY}:"):
            continue
        token = open_legacy(stored)
        if token is None:
            # It did not open before either (SECRET_KEY changed): the bot needs its token again.
            logger.warning("Telegram bot %s: its token does not open; enter it again", pk)
            continue
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET api_token = %s WHERE id = %s",
                [crypto.encrypt_text(token), pk],
            )


def seal_tokens_again(apps, schema_editor):
    table, rows = _rows(schema_editor)
    for pk, stored in rows:
        if crypto.is_encrypted(stored):
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET api_token = %s WHERE id = %s",
                    [seal_legacy(crypto.decrypt_text(stored)), pk],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0003_mail"),
    ]

    operations = [
        migrations.RenameField(
            model_name="telegrambot", old_name="token_sealed", new_name="api_token"
        ),
        migrations.AlterField(
            model_name="telegrambot",
            name="api_token",
            field=concilia.core.fields.EncryptedCharField(
                editable=False, max_length=200, verbose_name="token"
            ),
        ),
        migrations.RunPython(encrypt_tokens, seal_tokens_again, elidable=False),
    ]
