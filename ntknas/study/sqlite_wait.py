"""SQLite connections that wait for another program's lock in Python rather than in C.

SQLite's own busy handler sleeps inside the C library, where Python runs no signal handler: a
command waiting there is deaf to Ctrl-C and SIGTERM, and says nothing. A connection made by
:func:`connect` (or by SQLAlchemy with :func:`connect_args`) lets SQLite wait only ``POLL_SECONDS``
at a time and retries a statement that found the database locked from Python, between short
sleeps, until ``seconds`` have passed: a signal stops the wait at once, and a wait longer than
``NOTICE_SECONDS`` is announced once, as one line (an :class:`InputWarning`).
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from ntknas.core.errors import InputWarning

# How long SQLite itself waits for a lock before handing back to Python (deaf to signals meanwhile).
POLL_SECONDS = 0.1
# Python's sleep between two tries.
SLEEP_SECONDS = 0.05
# A wait longer than this is announced.
NOTICE_SECONDS = 2.0
# The extended result code of a write that can never succeed in its transaction (another write
# came after the transaction's snapshot): retrying the statement would only wait out the deadline.
BUSY_SNAPSHOT = "SQLITE_BUSY_SNAPSHOT"

T = TypeVar("T")


def _locked(error: sqlite3.OperationalError) -> bool:
    """Whether ``error`` is a lock another connection holds, which a later try may find released."""
    return "locked" in str(error) and getattr(error, "sqlite_errorname", None) != BUSY_SNAPSHOT


def waiting(action: Callable[[], T], where: str, seconds: float) -> T:
    """``action()``, tried again while it finds the database ``where`` locked, until ``seconds``
    have passed (then its error is raised)."""
    start = time.monotonic()
    announced = False
    while True:
        try:
            return action()
        except sqlite3.OperationalError as e:
            waited = time.monotonic() - start
            if not _locked(e) or waited >= seconds:
                raise
            if waited >= NOTICE_SECONDS and not announced:
                warnings.warn(
                    f"storage {where} is locked by another program: waiting up to {seconds:g} s "
                    "for it (Ctrl-C stops)",
                    InputWarning,
                    stacklevel=2,
                )
                announced = True
            time.sleep(SLEEP_SECONDS)


class _Cursor(sqlite3.Cursor):
    connection: _Connection

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        owner = self.connection
        return waiting(lambda: super(_Cursor, self).execute(sql, parameters), owner.where, owner.seconds)

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        rows = list(parameters)  # an iterator would be spent by the first try
        owner = self.connection
        return waiting(lambda: super(_Cursor, self).executemany(sql, rows), owner.where, owner.seconds)


class _Connection(sqlite3.Connection):
    """A connection whose cursors, ``execute`` and ``commit`` wait for locks in Python."""

    where = "?"
    seconds = 0.0

    def cursor(self, factory: type[sqlite3.Cursor] = _Cursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def commit(self) -> None:
        waiting(super().commit, self.where, self.seconds)


def _factory(where: str, seconds: float) -> type[_Connection]:
    """A connection class that names ``where`` and waits up to ``seconds`` for a lock."""
    return type("WaitingConnection", (_Connection,), {"where": where, "seconds": seconds})


def connect(database: str, where: str, seconds: float, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect(database, **kwargs)`` whose statements wait up to ``seconds`` for another
    program's lock, in Python; ``where`` names the storage in the notice of a long wait."""
    return sqlite3.connect(database, timeout=POLL_SECONDS, factory=_factory(where, seconds), **kwargs)


def connect_args(where: str, seconds: float) -> dict[str, Any]:
    """SQLAlchemy's ``connect_args`` for the pysqlite driver that make its connections wait as
    :func:`connect`'s do."""
    return {"timeout": POLL_SECONDS, "factory": _factory(where, seconds)}
