"""Two transactions that lock the same shared rows in opposite orders deadlock on PostgreSQL, and
one of them answers 500: bench/peer found open_case (the team's round robin, then the audit
chain's head) against the triage job (the head, then the team). The round robin now takes the
head first, the order every transaction follows. Real PostgreSQL connections, one per thread."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from concilia.accounts.models import Role, Team
from concilia.cases import actions
from concilia.cases.assignment import _round_robin
from concilia.cases.models import CaseEvent
from concilia.cases.tests.conftest import person
from concilia.core import audit

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite runs one writer at a time: no deadlock"
    ),
]


def test_round_robin_and_an_audited_change_do_not_deadlock(seeded):
    team = Team.objects.create(code="parcels", name_es="Paquetes", name_en="Parcels")
    agents = [person("ana", Role.AGENT, team).pk, person("bruno", Role.AGENT, team).pk]
    audit.record(audit.VIEW, target=team)  # the chain's head exists
    both_inside = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def assign_then_audit() -> None:  # open_case's order
        try:
            with transaction.atomic():
                _round_robin(team, agents)
                both_inside.wait()
                time.sleep(0.5)  # the other transaction audits first
                audit.record(audit.VIEW, target=team)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    def audit_then_assign() -> None:  # the triage job's order
        try:
            with transaction.atomic():
                both_inside.wait()
                audit.record(audit.VIEW, target=team)
                _round_robin(team, agents)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=assign_then_audit),
        threading.Thread(target=audit_then_assign),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    team.refresh_from_db()
    assert team.last_assigned_id == agents[1]  # both were assigned, one after the other
    assert audit.verify().ok


def test_a_locked_case_and_an_audited_change_that_refers_to_it_do_not_deadlock(seeded, open_case):
    # One transaction holds the audit chain's head and adds a row that refers to the case: its
    # commit checks that foreign key (FOR KEY SHARE on the case). The other locks the case (every
    # case action does) and then audits. bench/soak.py saw them deadlock; the case's lock now
    # takes the head first.
    case = open_case(category="other")
    both_inside = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def audit_then_refer() -> None:  # e.g. a triage job writing to the case's thread
        try:
            with transaction.atomic():
                both_inside.wait()
                audit.record(audit.VIEW, case=case)
                time.sleep(0.5)  # the other transaction locks the case meanwhile
                CaseEvent.objects.create(case_id=case.pk, kind="note", actor_kind="system")
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    def lock_then_audit() -> None:  # an agent's note: the case locked, then audited
        try:
            with transaction.atomic():
                both_inside.wait()
                time.sleep(0.2)  # the other holds the head first
                current = actions._lock(case, None)
                audit.record(audit.VIEW, case=current)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=audit_then_refer), threading.Thread(target=lock_then_audit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert audit.verify().ok
