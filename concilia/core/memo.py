"""Short-lived, per-process memory of rarely changing rows read on every request (categories,
the current privacy notice, holidays, API tokens): each entry is re-read after a few seconds, so
an administrator's change is seen within that time without any cache server."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_registry: list[Callable[[], None]] = []


def remember_for(seconds: float, max_entries: int = 1024) -> Callable[[F], F]:
    """Decorate a function of hashable arguments so its results are reused for `seconds`."""

    def decorate(function: F) -> F:
        entries: dict[Hashable, tuple[float, Any]] = {}
        lock = threading.Lock()

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = (args, tuple(sorted(kwargs.items())))
            now = time.monotonic()
            hit = entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
            value = function(*args, **kwargs)
            with lock:
                if len(entries) >= max_entries:
                    entries.clear()
                entries[key] = (now + seconds, value)
            return value

        wrapper.forget = entries.clear  # type: ignore[attr-defined]
        _registry.append(entries.clear)
        return wrapper  # type: ignore[return-value]

    return decorate


def forget_all() -> None:
    """Drop every remembered value (tests, and after an administrator's change in this process)."""
    for clear in _registry:
        clear()
