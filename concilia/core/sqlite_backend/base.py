"""SQLite for several processes: write transactions queue on a file lock beside the database.

SQLite lets one writer in at a time and makes the others poll with growing sleeps (1 ms, 2 ms,
5 ms … 100 ms), so under load a writer often sleeps long after the lock is free. Taking an
exclusive `flock` before `BEGIN IMMEDIATE` makes waiting writers wake the moment the previous one
commits. Writes made outside a transaction (autocommit, such as the task worker marking a job
done) take the same lock around their one statement, so they queue with the others instead of
polling SQLite's busy handler. Reads (WAL mode) never take the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from django.db.backends.sqlite3 import base

try:
    import fcntl
except ImportError:  # not on POSIX: SQLite's own busy handler is all there is
    fcntl = None  # type: ignore[assignment]


_READ_ONLY = ("SELECT", "PRAGMA", "EXPLAIN", "WITH", "SAVEPOINT", "RELEASE")


class CursorWrapper(base.SQLiteCursorWrapper):
    """Takes the write lock around a write statement run in autocommit."""

    database: DatabaseWrapper

    def _locked(self, run: Callable[[], Any], query: str) -> Any:
        database = self.database
        if (
            database._holds_write_lock
            or database.in_atomic_block
            or not database.autocommit
            or query.lstrip()[:9].upper().startswith(_READ_ONLY)
        ):
            return run()
        database._acquire_write_lock()
        try:
            return run()
        finally:
            database._release_write_lock()

    def execute(self, query: str, params: Any = None) -> Any:
        return self._locked(lambda: super(CursorWrapper, self).execute(query, params), query)

    def executemany(self, query: str, param_list: Any) -> Any:
        return self._locked(
            lambda: super(CursorWrapper, self).executemany(query, param_list), query
        )


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock: IO[bytes] | None = None
        self._holds_write_lock = False

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        if fcntl is None or self.is_in_memory_db() or name.startswith("file:"):
            return None
        return f"{name}.writelock"

    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.database = self
        return cursor

    def _acquire_write_lock(self) -> None:
        path = self._lock_path()
        if path is None or self._holds_write_lock:
            return
        if self._write_lock is None:
            self._write_lock = open(path, "ab")  # noqa: SIM115 - kept open with the connection
        fcntl.flock(self._write_lock, fcntl.LOCK_EX)
        self._holds_write_lock = True

    def _release_write_lock(self) -> None:
        if self._holds_write_lock and self._write_lock is not None:
            fcntl.flock(self._write_lock, fcntl.LOCK_UN)
        self._holds_write_lock = False

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire_write_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self) -> Any:
        try:
            return super()._close()
        finally:
            self._release_write_lock()
            if self._write_lock is not None:
                self._write_lock.close()
                self._write_lock = None
