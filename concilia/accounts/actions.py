"""Every change to a staff member's sign-in: turning two-factor sign-in on and off, recovery codes.

Each action is one transaction and leaves an entry in the admin's log of the person's account
(who did it and what), which is where staff changes are audited.
"""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticToken

from concilia.accounts import two_factor
from concilia.accounts.models import (
    AuthenticatorApp,
    RecoveryCode,
    RecoveryCodes,
    User,
    digest_code,
)
from concilia.core import audit

RECOVERY_DEVICE = "recovery codes"
# The second factors, in the order a code is tried: the app's, then a recovery code.
DEVICES: tuple[type[Device], ...] = (AuthenticatorApp, RecoveryCodes)


class CodeDoesNotMatch(ValueError):
    """The code typed does not belong to the key being set up."""


def _audit(*, user: User, actor: User, message: str, two_factor: str) -> None:
    """The admin's log of the account, and the audit log (`two_factor`: what became of it)."""
    audit.record(audit.CHANGE, target=user, actor=actor, detail={"two_factor": two_factor})
    LogEntry.objects.log_actions(
        user_id=actor.pk,
        queryset=[user],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _new_recovery_codes(user: User) -> list[str]:
    device, _created = RecoveryCodes.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE, defaults={"confirmed": True}
    )
    device.codes.all().delete()
    codes = [StaticToken.random_token() for _ in range(two_factor.RECOVERY_CODES)]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, digest=digest_code(code)) for code in codes
    )
    return codes


@transaction.atomic
def enable_two_factor(*, user: User, key: str, code: str) -> tuple[AuthenticatorApp, list[str]]:
    """Turn on two-factor sign-in with an authenticator app holding `key`, proven by `code`.

    Returns the app's device and ten new one-time recovery codes (shown once, never again).
    Raises CodeDoesNotMatch if the code is not the key's current one.
    """
    time_step = two_factor.matching_time_step(key, code)
    if time_step is None:
        raise CodeDoesNotMatch
    AuthenticatorApp.objects.filter(user=user).delete()
    device = AuthenticatorApp.objects.create(
        user=user,
        name="authenticator app",
        key=key,
        confirmed=True,
        last_t=time_step,  # the code just typed cannot sign in again
    )
    codes = _new_recovery_codes(user)
    user.two_factor_enabled = True
    user.save(update_fields=["two_factor_enabled"])
    _audit(user=user, actor=user, message="Two-factor sign-in turned on.", two_factor="on")
    return device, codes


@transaction.atomic
def replace_recovery_codes(*, user: User) -> list[str]:
    """Ten new recovery codes in place of the old ones (which stop working)."""
    codes = _new_recovery_codes(user)
    _audit(
        user=user, actor=user, message="New recovery codes made.", two_factor="new recovery codes"
    )
    return codes


@transaction.atomic
def disable_two_factor(*, user: User, actor: User) -> None:
    """Remove the person's app and recovery codes: they sign in with the password alone.

    Done by the person themselves, or by an administrator for someone who lost their phone
    (whoever must have two-factor sign-in then sets it up again at their next sign-in).
    """
    for model in DEVICES:
        model.objects.filter(user=user).delete()
    user.two_factor_enabled = False
    user.save(update_fields=["two_factor_enabled"])
    message = (
        "Two-factor sign-in turned off."
        if actor.pk == user.pk
        else "Two-factor sign-in reset by an administrator."
    )
    _audit(user=user, actor=actor, message=message, two_factor="off")


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__name=RECOVERY_DEVICE).count()


def verify_code(*, user: User, code: str) -> Device | None:
    """The device that accepts `code` (the app's code, else a recovery code, used up), if any.

    Each device slows down repeated wrong codes by itself (django-otp's throttling).
    """
    code = two_factor.normalised_code(code)
    with transaction.atomic():
        for model in DEVICES:
            for device in model.objects.filter(user=user, confirmed=True).select_for_update():
                if device.verify_token(code):
                    return device
    return None
