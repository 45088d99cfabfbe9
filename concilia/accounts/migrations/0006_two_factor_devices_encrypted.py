# Two-factor devices of our own (accounts.AuthenticatorApp, accounts.RecoveryCodes) in place of
# django-otp's TOTPDevice and StaticDevice, which keep the app's key and the recovery codes in
# clear: each app's key moves encrypted (docs/encryption.md), each recovery code as a keyed
# digest, and django-otp's rows are deleted. Sessions verified with an old device are asked for a
# code again. Going back moves the apps back; recovery codes cannot be (only digests are kept):
# people make new ones on their two-factor page.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils.crypto import salted_hmac

import concilia.core.fields

DEVICE_FIELDS = ("user_id", "name", "confirmed", "throttling_failure_timestamp")


def _digest(code):
    # As accounts.models.digest_code writes it (kept here: a migration does not change).
    mac = salted_hmac(
        "concilia.recovery-code", code, secret=settings.SECRET_KEY, algorithm="sha256"
    )
    return mac.hexdigest()


def _common(device):
    fields = {name: getattr(device, name) for name in DEVICE_FIELDS}
    return {**fields, "throttling_failure_count": device.throttling_failure_count}


def move_devices(apps, schema_editor):
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    StaticDevice = apps.get_model("otp_static", "StaticDevice")
    AuthenticatorApp = apps.get_model("accounts", "AuthenticatorApp")
    RecoveryCodes = apps.get_model("accounts", "RecoveryCodes")
    RecoveryCode = apps.get_model("accounts", "RecoveryCode")
    for old in TOTPDevice.objects.order_by("pk").iterator():
        AuthenticatorApp.objects.create(
            **_common(old),
            key=old.key,  # the field encrypts it
            last_t=old.last_t,
            drift=old.drift,
            created_at=old.created_at,
            last_used_at=old.last_used_at,
        )
    TOTPDevice.objects.all().delete()
    for old in StaticDevice.objects.order_by("pk").iterator():
        new = RecoveryCodes.objects.create(**_common(old))
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=new, digest=_digest(token.token)) for token in old.token_set.all()
        )
    StaticDevice.objects.all().delete()  # and their tokens


def move_devices_back(apps, schema_editor):
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    StaticDevice = apps.get_model("otp_static", "StaticDevice")
    AuthenticatorApp = apps.get_model("accounts", "AuthenticatorApp")
    RecoveryCodes = apps.get_model("accounts", "RecoveryCodes")
    for new in AuthenticatorApp.objects.order_by("pk").iterator():
        TOTPDevice.objects.create(
            **_common(new),
            key=new.key,
            last_t=new.last_t,
            drift=new.drift,
            created_at=new.created_at,
            last_used_at=new.last_used_at,
        )
    for new in RecoveryCodes.objects.order_by("pk").iterator():
        StaticDevice.objects.create(**_common(new))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_two_factor"),
        ("otp_static", "0003_add_timestamps"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthenticatorApp",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="The human-readable name of this device.", max_length=64
                    ),
                ),
                (
                    "confirmed",
                    models.BooleanField(default=True, help_text="Is this device ready for use?"),
                ),
                (
                    "throttling_failure_timestamp",
                    models.DateTimeField(
                        blank=True,
                        default=None,
                        help_text="A timestamp of the last failed verification attempt. Null if last attempt succeeded.",
                        null=True,
                    ),
                ),
                (
                    "throttling_failure_count",
                    models.PositiveIntegerField(
                        default=0, help_text="Number of successive failed attempts."
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        auto_now_add=True,
                        help_text="The date and time when this device was initially created in the system.",
                        null=True,
                    ),
                ),
                (
                    "last_used_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="The most recent date and time this device was used.",
                        null=True,
                    ),
                ),
                (
                    "key",
                    concilia.core.fields.EncryptedCharField(
                        editable=False, max_length=80, verbose_name="key"
                    ),
                ),
                ("last_t", models.BigIntegerField(default=-1, editable=False)),
                ("drift", models.SmallIntegerField(default=0, editable=False)),
                (
                    "user",
                    models.ForeignKey(
                        help_text="The user that this device belongs to.",
                        on_delete=django.db.models.deletion.CASCADE,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "authenticator app",
                "verbose_name_plural": "authenticator apps",
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="RecoveryCodes",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="The human-readable name of this device.", max_length=64
                    ),
                ),
                (
                    "confirmed",
                    models.BooleanField(default=True, help_text="Is this device ready for use?"),
                ),
                (
                    "throttling_failure_timestamp",
                    models.DateTimeField(
                        blank=True,
                        default=None,
                        help_text="A timestamp of the last failed verification attempt. Null if last attempt succeeded.",
                        null=True,
                    ),
                ),
                (
                    "throttling_failure_count",
                    models.PositiveIntegerField(
                        default=0, help_text="Number of successive failed attempts."
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        help_text="The user that this device belongs to.",
                        on_delete=django.db.models.deletion.CASCADE,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "recovery codes",
                "verbose_name_plural": "recovery codes",
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="RecoveryCode",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(db_index=True, max_length=64)),
                (
                    "device",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="codes",
                        to="accounts.recoverycodes",
                    ),
                ),
            ],
        ),
        migrations.RunPython(move_devices, move_devices_back, elidable=False),
    ]
