"""Keeping other systems' failures out of a case: timeouts, a circuit breaker per connector, and
one exception, `ConnectorUnavailable`, that callers read as "that data is unavailable".

The breaker's state lives in Django's cache, not in the process: every web process and worker
of a deployment sees the same breaker. The deployed cache is shared (file-based on one machine,
Redis at scale, see settings.CACHES), so no table or migration is needed, and a lost cache only
means the breaker forgets and tries the system again. A database row would survive restarts but
would add a write to every failing call inside whatever transaction the caller holds; the cache
does not. When the cache itself fails, the breaker lets calls through (it never blocks alone).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


class ConnectorUnavailable(Exception):
    """The other system did not answer usefully (down, slow, refusing, circuit open): treat its
    data as unavailable and carry on without it."""

    def __init__(self, connector: str, reason: str) -> None:
        super().__init__(f"{connector}: {reason}")
        self.connector = connector
        self.reason = reason


class ConnectorRejected(ConnectorUnavailable):
    """The other system answered and refused the request (HTTP 400, 409, 422…): it is up, so
    the breaker stays closed, but what was asked did not happen."""

    def __init__(self, connector: str, reason: str, *, status: int, body: Any = None) -> None:
        super().__init__(connector, reason)
        self.status = status
        self.body = body


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cool_down` seconds one caller (in
    any process) may try again (half-open): success closes it, failure opens it again."""

    def __init__(self, name: str, *, threshold: int | None = None, cool_down: float | None = None):
        self.name = name
        self.threshold = threshold or settings.CONNECTOR_BREAKER_THRESHOLD
        self.cool_down = (
            cool_down if cool_down is not None else settings.CONNECTOR_BREAKER_COOL_DOWN
        )
        prefix = f"concilia:breaker:{name}"
        self._failures_key = f"{prefix}:failures"
        self._opened_key = f"{prefix}:opened_at"
        self._trial_key = f"{prefix}:trial"

    @property
    def state(self) -> str:
        """closed, open or half_open (for status pages and tests)."""
        opened = self._get(self._opened_key)
        if opened is None:
            return "closed"
        return "open" if time.time() - opened < self.cool_down else "half_open"

    def before_call(self) -> None:
        """Raise ConnectorUnavailable while open; in half-open, let one trial call through."""
        opened = self._get(self._opened_key)
        if opened is None:
            return
        if time.time() - opened < self.cool_down:
            raise ConnectorUnavailable(self.name, "circuit open")
        # Half-open: `add` succeeds for exactly one caller across processes.
        try:
            trial = cache.add(self._trial_key, 1, timeout=max(1, int(self.cool_down)))
        except Exception:
            logger.warning("Circuit breaker cache failed for %s", self.name, exc_info=True)
            return
        if not trial:
            raise ConnectorUnavailable(self.name, "circuit half-open, trial call in progress")

    def record_success(self) -> None:
        try:
            cache.delete_many([self._failures_key, self._opened_key, self._trial_key])
        except Exception:
            logger.warning("Circuit breaker cache failed for %s", self.name, exc_info=True)

    def record_failure(self) -> None:
        try:
            if cache.get(self._opened_key) is not None:  # a half-open trial failed
                self._open()
                return
            cache.add(self._failures_key, 0, timeout=None)
            failures = cache.incr(self._failures_key)
            if failures >= self.threshold:
                self._open()
        except Exception:
            logger.warning("Circuit breaker cache failed for %s", self.name, exc_info=True)

    def _open(self) -> None:
        logger.warning("Circuit opened for connector %s", self.name)
        cache.set(self._opened_key, time.time(), timeout=None)
        cache.delete(self._trial_key)

    def _get(self, key: str) -> Any:
        try:
            return cache.get(key)
        except Exception:
            logger.warning("Circuit breaker cache failed for %s", self.name, exc_info=True)
            return None


# Answers that mean the system is unusable for now, not that this request was wrong.
_OUTAGES = frozenset({401, 403, 408, 429})


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json(parse_float=Decimal)
    except ValueError:
        return None


class ConnectorClient:
    """HTTP calls to one connector's system with a timeout and its circuit breaker.

    A 404 is an answer ("no such thing"), not a failure. Timeouts, network errors, 5xx, 429,
    401/403 (a revoked key is an outage for us) and unreadable bodies count as failures and
    raise ConnectorUnavailable; other 4xx raise ConnectorRejected without tripping the breaker.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.breaker = breaker or CircuitBreaker(name)
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Accept": "application/json", **(headers or {})},
            params=dict(params or {}),
            auth=auth,
            timeout=timeout if timeout is not None else settings.CONNECTOR_TIMEOUT,
            follow_redirects=False,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any | None:
        """The decoded JSON body, or None for a 404."""
        self.breaker.before_call()
        try:
            response = self._client.request(method, path, json=json, params=params, headers=headers)
        except httpx.TimeoutException as error:
            self.breaker.record_failure()
            raise ConnectorUnavailable(self.name, f"timed out ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            self.breaker.record_failure()
            raise ConnectorUnavailable(self.name, f"{type(error).__name__}: {error}") from error
        if response.status_code == 404:
            self.breaker.record_success()
            return None
        status = response.status_code
        if status >= 400:
            reason = f"HTTP {status} on {method} {path}: {response.text[:200]}"
            if status in _OUTAGES or status >= 500:
                self.breaker.record_failure()
                raise ConnectorUnavailable(self.name, reason)
            self.breaker.record_success()
            raise ConnectorRejected(self.name, reason, status=status, body=_json_or_none(response))
        try:
            # Floats as Decimal: money never goes through binary floating point.
            body = response.json(parse_float=Decimal) if response.content else {}
        except ValueError as error:
            self.breaker.record_failure()
            raise ConnectorUnavailable(self.name, "the answer is not JSON") from error
        self.breaker.record_success()
        return body

    def close(self) -> None:
        self._client.close()
