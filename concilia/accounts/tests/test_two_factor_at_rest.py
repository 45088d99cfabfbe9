"""Two-factor secrets at rest (docs/encryption.md): an authenticator app's key is encrypted and
recovery codes are kept as keyed digests, yet Olga still signs in with a code from her app or a
recovery code; devices set up before (django-otp's, in clear) are moved by the migration."""

from __future__ import annotations

import importlib
import time
from binascii import unhexlify

import pytest
from django.apps import apps
from django.db import connection
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from concilia.accounts import actions, two_factor
from concilia.accounts.models import AuthenticatorApp, RecoveryCodes, User
from concilia.accounts.tests.test_sign_in import PASSWORD, clock, olga  # noqa: F401
from concilia.core import crypto

pytestmark = pytest.mark.django_db

migration = importlib.import_module(
    "concilia.accounts.migrations.0006_two_factor_devices_encrypted"
)


def raw_rows(*tables: str) -> str:
    values = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - our own table names
            values += [str(value) for row in cursor.fetchall() for value in row]
    return "\n".join(values)


def app_code(key: str, *, steps_later: int = 0) -> str:
    totp = TOTP(unhexlify(key))
    totp.time = time.time() + steps_later * 30
    return f"{totp.token():06d}"


def test_the_apps_key_and_the_recovery_codes_are_not_in_clear_and_still_sign_in(
    olga,  # noqa: F811
    clock,  # noqa: F811
):
    # Given Olga turned on two-factor sign-in with her app
    key = two_factor.new_key()
    device, codes = actions.enable_two_factor(user=olga, key=key, code=app_code(key))
    # Then neither the key (as stored or as the app shows it) nor a recovery code is in a row
    raw = raw_rows("accounts_authenticatorapp", "accounts_recoverycodes", "accounts_recoverycode")
    assert key not in raw and two_factor.readable_key(key).replace(" ", "") not in raw
    for code in codes:
        assert two_factor.normalised_code(code) not in raw
    assert crypto.PREFIX in raw
    # while the next code from her app signs her in, once
    clock.advance(0.5)
    assert actions.verify_code(user=olga, code=app_code(key)) == device
    assert actions.verify_code(user=olga, code=app_code(key)) is None
    # and so does a recovery code, once (after the wait the wrong try above earned)
    RecoveryCodes.objects.update(throttling_failure_count=0)
    assert isinstance(actions.verify_code(user=olga, code=codes[0]), RecoveryCodes)
    assert actions.verify_code(user=olga, code=codes[0]) is None
    assert actions.recovery_codes_left(olga) == 9


def test_the_migration_moves_devices_set_up_before_and_forgets_their_clear_copies(
    olga,  # noqa: F811
    clock,  # noqa: F811
):
    # Given Olga's app and recovery codes as django-otp kept them, in clear
    key = two_factor.new_key()
    TOTPDevice.objects.create(user=olga, name="authenticator app", key=key, confirmed=True)
    static = StaticDevice.objects.create(user=olga, name=actions.RECOVERY_DEVICE, confirmed=True)
    StaticToken.objects.create(device=static, token="abcd2345")
    User.objects.filter(pk=olga.pk).update(two_factor_enabled=True)
    # When the migration runs
    migration.move_devices(apps, None)
    # Then the clear copies are gone and hers are ours, encrypted
    assert not TOTPDevice.objects.exists() and not StaticToken.objects.exists()
    assert key not in raw_rows("accounts_authenticatorapp", "otp_totp_totpdevice")
    assert "abcd2345" not in raw_rows("accounts_recoverycode", "otp_static_statictoken")
    assert AuthenticatorApp.objects.get(user=olga).key == key
    # and she signs in with her app and with her recovery code as before
    assert actions.verify_code(user=olga, code=app_code(key)) is not None
    assert actions.verify_code(user=olga, code="ABCD-2345") is not None
    # Going back gives django-otp her app again (recovery codes are only digests: made anew)
    migration.move_devices_back(apps, None)
    assert TOTPDevice.objects.get(user=olga).key == key
