"""Collective detection and an audited change lock the same two shared rows (a collective flag,
the audit chain's head): in opposite orders they deadlock on PostgreSQL. bench/soak.py found it:
two triage jobs, one that had audited before joining the flag (an offer announced) and one that
audits after (a wait), and a note an agent was adding answered 500. Joining a flag now takes
the head first, the order every transaction follows. Real PostgreSQL connections, one per
thread."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from concilia.core import audit
from concilia.resolution.collective import _join
from concilia.resolution.models import CollectiveFlag

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite runs one writer at a time: no deadlock"
    ),
]


def test_joining_a_collective_flag_and_an_audited_change_do_not_deadlock(seeded):
    now = timezone.now()
    flag = CollectiveFlag.objects.create(
        kind="carrier_day", key="ups|2026-12-05", min_customers=3, window_hours=48,
        first_seen_at=now, last_seen_at=now,
    )  # fmt: skip
    audit.record(audit.VIEW, target=flag)  # the chain's head exists
    both_inside = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def join_then_audit() -> None:  # a triage that decides "wait": detection, then its audit
        try:
            with transaction.atomic():
                _join(flag, [], now=now)
                both_inside.wait()
                time.sleep(0.5)  # the other transaction audits first
                audit.record(audit.VIEW, target=flag)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    def audit_then_join() -> None:  # a triage that announced an offer (audited) before
        try:
            with transaction.atomic():
                both_inside.wait()
                audit.record(audit.VIEW, target=flag)
                _join(flag, [], now=now)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=join_then_audit), threading.Thread(target=audit_then_join)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert audit.verify().ok
