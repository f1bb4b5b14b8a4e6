"""SQLAlchemy's aiosqlite driver with one thread hop per statement instead of four.

aiosqlite runs each call on the connection's own thread and hands the result back to the
event loop: a queue put, a thread wake-up, a `call_soon_threadsafe` that wakes the loop.
SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute, fetch
every row, close the cursor) and one per `ROLLBACK` when a session ends, even a session
that only read. A conference join ran 8 statements in 39 hops (docs/performance.md).

Here a statement is one call on that thread: execute, fetch every row and close the cursor
together, keeping the description, row count and last row id for SQLAlchemy to read.
`COMMIT` and `ROLLBACK` are not sent when the connection is not in a transaction (the
sqlite3 module opens one only before a write, so a session that only read has none):
what sqlite3 itself would do, minus the hop. The SQL, the transactions and the thread
that touches the database are the same as with the stock driver, so nothing blocks the
event loop that did not before.

`create_engine` (db/engine.py) passes `dbapi()` as the dialect's DBAPI module for every
`sqlite+aiosqlite://` URL.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# What one statement leaves behind: description, rows (None without a result), rowcount,
# lastrowid.
Outcome = tuple[Any, list[Any] | None, int, int | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """Runs on the connection's thread: the whole statement, its cursor closed after."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds no sqlite3 cursor: each statement's results are kept here."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No call of the base's __init__: it opens an aiosqlite cursor (a hop).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's cursor was closed on the connection's thread."""

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._statement(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._statement(operation, seq_of_parameters, many=True)

    async def _statement(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            # aiosqlite's own queue to its thread: one call, one result (`_execute` is how
            # its public methods reach the thread; `_conn` raises once it is closed).
            outcome: Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = deque(rows) if rows is not None else deque()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    _cursor_cls = OneHopCursor  # type: ignore[assignment]

    def _in_transaction(self) -> bool:
        # A plain read of sqlite3_get_autocommit(); nothing else runs on this connection
        # while its owner awaits commit or rollback.
        raw = self._connection._connection
        return raw is not None and raw.in_transaction

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's driver: never hold up exit
        return OneHopConnection(self, await_(connection))


def dbapi() -> OneHopDbapi:
    return OneHopDbapi(aiosqlite, sqlite3)
