"""Where extra training examples come from: sources registered by higher apps, read by `nlu train`.

The nlu package sits below the apps that hold labelled texts (cases), so it cannot import them;
they register a function here instead (the cases app registers "closed_cases" in its ready()).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

ExampleSource = Callable[[], Iterable[tuple[str, str]]]

_sources: dict[str, ExampleSource] = {}


class UnknownSource(LookupError):
    """No example source registered under that name."""


def register_example_source(name: str, fn: ExampleSource) -> None:
    """Make `fn` (returning (text, label) pairs) available to training under `name`."""
    _sources[name] = fn


def example_sources() -> dict[str, ExampleSource]:
    return dict(_sources)


def examples_from(name: str) -> list[tuple[str, str]]:
    """Every (text, label) pair the named source gives now, blank texts or labels left out."""
    try:
        fn = _sources[name]
    except KeyError:
        known = ", ".join(sorted(_sources)) or "none"
        raise UnknownSource(f"No example source {name!r} (registered: {known}).") from None
    return [
        (str(text).strip(), str(label).strip())
        for text, label in fn()
        if str(text).strip() and str(label).strip()
    ]
