"""Fixed-window rate limits kept in the shared cache, used alike by the web form and the API.

Written here rather than taken from django-ninja's throttles because those read, modify and write
a list (so concurrent requests slip through); `cache.add` + `cache.incr` count atomically on Redis.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """'20/hour' -> (20, 3600); '' or '0' -> None (no limit)."""
    if not rate or rate.strip() in {"0", ""}:
        return None
    count, _, period = rate.partition("/")
    period = period.strip().lower() or "s"
    digits = "".join(ch for ch in period if ch.isdigit())
    unit = period[len(digits) :]
    if unit not in _UNITS:
        raise ValueError(f"Invalid rate: {rate!r}")
    return int(count), (int(digits) if digits else 1) * _UNITS[unit]


def client_address(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only as far as NUM_PROXIES proxies."""
    proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "unknown")


class RateLimit:
    """`RateLimit("submissions", "20/hour").hit(key)` is False once the key is over its limit."""

    def __init__(self, scope: str, rate: str):
        self.scope = scope
        self.limit = parse_rate(rate)

    def hit(self, key: str) -> bool:
        if self.limit is None:
            return True
        count, period = self.limit
        window = int(time.time() // period)
        cache_key = f"ratelimit:{self.scope}:{key}:{window}"
        if cache.add(cache_key, 1, timeout=period + 1):
            return True
        try:
            current = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=period + 1)
            return True
        return current <= count

    def retry_after(self) -> int:
        if self.limit is None:
            return 0
        _, period = self.limit
        return period - int(time.time()) % period


def anonymous_submissions() -> RateLimit:
    return RateLimit("submissions", settings.CONCILIA_ANON_SUBMISSION_RATE)


def sign_in_requests() -> RateLimit:
    return RateLimit("sign-in", settings.CONCILIA_SIGN_IN_RATE)


def api_tokens() -> RateLimit:
    return RateLimit("api-token", settings.CONCILIA_TOKEN_RATE)
