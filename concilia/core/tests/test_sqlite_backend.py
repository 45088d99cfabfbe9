"""The SQLite backend queues every writer on one file lock, inside transactions and outside them."""

from __future__ import annotations

import fcntl
import threading

import pytest
from django.db import connection, connections, transaction

from concilia.core.models import Holiday

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite backend only")


def run_in_thread(work) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def target() -> None:
        try:
            work()
            done.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, done


@pytest.fixture
def held_write_lock(transactional_db):
    connection.ensure_connection()
    path = connection._lock_path()
    assert path is not None
    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def insert_holiday(name: str) -> None:
    Holiday.objects.create(date="2026-12-25", name=name)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda: insert_holiday("autocommit"), id="autocommit"),
        pytest.param(lambda: transaction.atomic(insert_holiday)("atomic"), id="transaction"),
    ],
)
def test_a_writer_waits_for_the_lock_and_writes_once_it_is_free(held_write_lock, write):
    thread, done = run_in_thread(write)
    assert not done.wait(0.5), "the write went ahead while another writer held the lock"
    fcntl.flock(held_write_lock, fcntl.LOCK_UN)
    assert done.wait(10), "the write did not go ahead once the lock was free"
    thread.join(10)
    assert Holiday.objects.filter(date="2026-12-25").exists()


def test_reads_never_wait_for_the_write_lock(held_write_lock):
    thread, done = run_in_thread(lambda: list(Holiday.objects.all()))
    assert done.wait(5), "a read waited for the write lock"
    thread.join(5)
