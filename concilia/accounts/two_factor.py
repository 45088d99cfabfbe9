"""Two-factor sign-in for staff: who needs it, what step a session is at, and TOTP keys.

Devices are django-otp's: a TOTP device (an authenticator app) and a static device holding the
one-time recovery codes. A session is fully signed in once django-otp marks it verified, or,
for someone without two-factor sign-in who is not required to have it, after the password.
"""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from binascii import unhexlify
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import segno
from django.conf import settings
from django_otp.oath import TOTP

from concilia.accounts.models import Role, User

RECOVERY_CODES = 10
KEY_BYTES = 20  # 160 bits, as RFC 4226 recommends

View = TypeVar("View", bound=Callable[..., Any])


class Step(StrEnum):
    """What a signed-in person must still do before the staff areas open."""

    VERIFY = "verify"  # enter a code from their app (or a recovery code)
    SET_UP = "set-up"  # required to have two-factor sign-in, and has none yet


def required_for(user: User) -> bool:
    mode = settings.TWO_FACTOR_REQUIRED
    if mode == "none":
        return False
    if mode == "staff":
        return True
    return user.is_superuser or user.role == Role.ADMINISTRATOR


def is_verified(user: Any) -> bool:
    """Whether this session passed the second factor (django-otp's OTPMiddleware knows)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def pending_step(user: User) -> Step | None:
    """The step still missing in this session, or None once fully signed in."""
    if is_verified(user):
        return None
    if user.two_factor_enabled:
        return Step.VERIFY
    if required_for(user):
        return Step.SET_UP
    return None


def sign_in_step(view: View) -> View:
    """Mark a view that a person part-way through signing in may open (verify, set up, sign out)."""
    view.sign_in_step = True  # type: ignore[attr-defined]
    return view


def new_key() -> str:
    """A random TOTP key, hex-encoded as django-otp stores it."""
    return secrets.token_hex(KEY_BYTES)


def readable_key(key: str) -> str:
    """The key as people type it into an app: base32 in groups of four."""
    text = b32encode(unhexlify(key)).decode("ascii").rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def provisioning_uri(key: str, user: User) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code (django-otp's format)."""
    issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
    label = quote(f"{issuer}:{user.get_username()}")
    params = urlencode({"secret": readable_key(key).replace(" ", ""), "digits": 6, "period": 30})
    return f"otpauth://totp/{label}?{params}&issuer={quote(issuer)}"


def qr_code(uri: str) -> str:
    """The URI as a QR code, an SVG data URI for an <img> (the CSP allows data: images)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def matching_time_step(key: str, code: str) -> int | None:
    """The time step whose code `code` is (now, or just before or after), or None."""
    if not code.isdigit():
        return None
    totp = TOTP(unhexlify(key))
    totp.time = time.time()
    return totp.t() if totp.verify(int(code), tolerance=1) else None


def normalised_code(text: str) -> str:
    """A code as typed, without spaces or dashes (apps show "123 456", codes "abcd-efgh")."""
    return "".join(ch for ch in text if ch not in " -\u00a0").lower()
