"""People, teams and a movable clock for the analytics tests (the helpdesk's personas: Ana and
Bruno are agents, Sara supervises Customer care; the office works 9:00-18:00 in Madrid)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from concilia.cases.tests.conftest import ana, bruno, office, sara, teams  # noqa: F401

MADRID = ZoneInfo("Europe/Madrid")


def madrid(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MADRID)


class Clock:
    """timezone.now() for the actions, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.now = madrid(2026, 11, 2, 9, 0)
        monkeypatch.setattr("django.utils.timezone.now", lambda: self.now)

    def at(self, *args: int) -> dt.datetime:
        self.now = madrid(*args)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)
