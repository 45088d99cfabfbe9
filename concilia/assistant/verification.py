"""Proving an email address in the chat: a six-digit code sent to it.

The conversation keeps only a random nonce; the code is an HMAC of it with the SECRET_KEY, so
neither the database nor the job queue holds a usable code.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

CODE_MINUTES = 15
MAX_ATTEMPTS = 3


def code_for(nonce: str) -> str:
    digest = salted_hmac("concilia.chat-code", nonce, algorithm="sha256").hexdigest()
    return f"{int(digest[:12], 16) % 1_000_000:06d}"


def new_challenge(email: str, customer_id: int) -> dict[str, object]:
    expires = timezone.now() + dt.timedelta(minutes=CODE_MINUTES)
    return {
        "nonce": secrets.token_hex(16),
        "email": email,
        "customer": customer_id,
        "expires": expires.isoformat(),
        "attempts": 0,
    }


def check(challenge: dict[str, object], typed: str) -> bool:
    """True when `typed` is the challenge's code and the code is still valid."""
    if timezone.now() > dt.datetime.fromisoformat(str(challenge["expires"])):
        return False
    digits = "".join(ch for ch in typed if ch.isdigit())
    return constant_time_compare(digits, code_for(str(challenge["nonce"])))
