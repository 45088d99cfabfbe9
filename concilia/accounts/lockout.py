"""Locking staff sign-in after repeated failures, per user name and per client address.

Failures (a wrong password or a wrong two-factor code) are counted in the shared cache within
LOGIN_LOCKOUT_MINUTES of the first one; at the limit the user name (or the address) is locked for
LOGIN_LOCKOUT_MINUTES. A success clears the user name's count. Counts use `cache.add` and
`cache.incr`, atomic on Redis, so that parallel guesses cannot slip past the limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import ngettext

from concilia.accounts.models import User
from concilia.core import audit
from concilia.core.throttling import client_address

logger = logging.getLogger("concilia.security")


@dataclass(frozen=True)
class Lock:
    """A user name or an address that may not sign in until `until` (a Unix time)."""

    until: float

    @property
    def minutes_left(self) -> int:
        return max(1, math.ceil((self.until - time.time()) / 60))

    @property
    def message(self) -> str:
        minutes = self.minutes_left
        return ngettext(
            "Too many failed sign-in attempts. Try again in %(minutes)d minute.",
            "Too many failed sign-in attempts. Try again in %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}


def _subjects(username: str, address: str) -> list[tuple[str, int]]:
    # User names are hashed: the cache then holds no names, and any length or character fits.
    name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    return [
        (f"signin:user:{name}", settings.LOGIN_FAILURES_PER_USER),
        (f"signin:address:{address}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def _window() -> int:
    return settings.LOGIN_LOCKOUT_MINUTES * 60


def current_lock(request: HttpRequest, username: str) -> Lock | None:
    """The lock on this user name or on the request's address, if either is locked now."""
    found = cache.get_many(
        [f"{subject}:locked" for subject, _limit in _subjects(username, client_address(request))]
    )
    until = [value for value in found.values() if value > time.time()]
    return Lock(until=max(until)) if until else None


def _count(subject: str, now: float) -> int:
    """One more failure of `subject` within its window (which starts at its first failure)."""
    window = _window()
    if cache.add(f"{subject}:count", 1, timeout=window):
        cache.set(f"{subject}:since", now, timeout=window)
        return 1
    try:
        count = cache.incr(f"{subject}:count")
    except ValueError:  # the window ended in between
        cache.set(f"{subject}:count", 1, timeout=window)
        cache.set(f"{subject}:since", now, timeout=window)
        return 1
    # Some caches restart the key's lifetime on incr: keep the window's end.
    since = cache.get(f"{subject}:since", now)
    cache.touch(f"{subject}:count", max(1, int(since + window - now)))
    return count


def record_failure(request: HttpRequest, username: str) -> Lock | None:
    """Count a failed sign-in; the lock it caused or was already under, if any."""
    address = client_address(request)
    now = time.time()
    for subject, limit in _subjects(username, address):
        if _count(subject, now) >= limit > 0:
            if cache.add(f"{subject}:locked", now + _window(), timeout=_window()):
                _audit_lock(username, subject.split(":")[1])
            logger.warning(
                "Sign-in locked: %s (user name %r, from %s)",
                subject.split(":")[1],
                username[:150],
                address,
            )
    return current_lock(request, username)


def _audit_lock(username: str, locked: str) -> None:
    """An entry for a new lock: on the account named, when it is one (`locked`: "user" or
    "address", which is in the entry anyway)."""
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    audit.record(
        audit.LOCK_OUT,
        target=user if user is not None else User,
        actor=user,
        detail={"locked": locked, "minutes": settings.LOGIN_LOCKOUT_MINUTES},
    )


def clear_failures(username: str) -> None:
    """A successful sign-in forgets the user name's failures (not the address's)."""
    subject, _limit = _subjects(username, "")[0]
    cache.delete_many([f"{subject}:count", f"{subject}:since"])
