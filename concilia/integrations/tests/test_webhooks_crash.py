"""The reliability test of the outbox: the real worker (`concilia worker`, as `concilia serve`
starts it) is killed with SIGKILL in the middle of a batch of webhooks and started again with the
sweep; every event reaches the receiver, in order per case.

What is asserted: a receiver that deduplicates by event id processes every event exactly once;
the raw requests hold each event at least once, with at most one duplicate (the request in flight
when the worker died, sent again once its claim lapsed). Nothing is lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from concilia.core.events import EventType, emit
from concilia.integrations.tests.receiver import Receiver
from concilia.integrations.webhooks import actions
from concilia.integrations.webhooks.models import Delivery, DeliveryStatus


def database_url() -> str:
    """The test database, for the worker processes to share with this one."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}{port}/{db['NAME']}"
    pytest.skip(f"no URL for {connection.vendor}")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "concilia", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing(tmp_path: Path, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the receiver is on loopback
    receiver = Receiver(delay=0.25).start()
    processes: list[subprocess.Popen] = []
    try:
        endpoint = actions.create_endpoint(url=receiver.url, events=EventType.values, actor=None)
        receiver.secret = endpoint.secret
        with transaction.atomic():  # one change, many events (one dispatcher job)
            events = [
                emit(kind, subject=subject, payload={"case": subject})
                for kind in (
                    EventType.CASE_CREATED,
                    EventType.CASE_MESSAGE_ADDED,
                    EventType.CASE_STATUS_CHANGED,
                    EventType.CASE_CLOSED,
                )
                for subject in ("RC-A", "RC-B", "RC-C")
            ]
        env = {
            **os.environ,
            # The test process's home: its keys decrypt the endpoint's signing secret.
            "CONCILIA_HOME": str(settings.HOME),
            "DATABASE_URL": database_url(),
            "CONCILIA_WEBHOOK_ALLOW_PRIVATE_URLS": "true",  # the receiver is on loopback
            "CONCILIA_WEBHOOK_TIMEOUT_SECONDS": "2",
            "CONCILIA_WEBHOOK_CLAIM_SECONDS": "2",
            "CONCILIA_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        }
        worker = ["worker"]  # every queue: the webhooks' jobs go to their own

        processes.append(start(worker, env))
        wait_until(lambda: len(receiver.received) >= 3, 30, "the worker never started sending")
        stop(processes[0])  # SIGKILL, mid-batch: a request is in flight
        delivered = Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count()
        assert delivered < len(events), "the batch finished before the kill"

        processes.append(start(worker, env))
        processes.append(start(["sweep", "--every", "1"], env))
        wait_until(
            lambda: not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists(),
            60,
            "not every event was delivered after the restart",
        )

        expected = [str(e.event_id) for e in events]
        assert receiver.accepted_ids() == set(expected)
        assert all(r.signed for r in receiver.received)
        requests = [r.event_id for r in receiver.accepted()]
        assert len(requests) - len(set(requests)) <= 1  # at most the one in flight at the kill
        for subject in ("RC-A", "RC-B", "RC-C"):
            arrived = [r.event_id for r in receiver.accepted() if r.body["subject"] == subject]
            first_arrivals = list(dict.fromkeys(arrived))
            assert first_arrivals == [str(e.event_id) for e in events if e.subject == subject]
    finally:
        for process in processes:
            stop(process)
        receiver.stop()
