"""An aiosqlite look-alike that runs each SQLite call on the event loop's own thread.

aiosqlite hands every call (cursor, execute, fetch, close, commit) to a worker thread and
back (a queue put, a thread wake-up, ``call_soon_threadsafe`` and a self-pipe write), four
or five round trips per statement. For a single-task batch job on a local file (the
demo's replay) that hand-off costs more than the statement. The connection here offers the
part of aiosqlite's API that SQLAlchemy's ``sqlite+aiosqlite`` dialect uses, with
coroutines that never suspend.

Meant for one task driving the database; concurrent tasks (a sender's pipelined rounds)
work too: a call blocks the event loop, so SQLite's own busy wait would stall the lock's
holder with it. Connections here run with ``busy_timeout = 0`` and a statement that finds
the database locked yields to the loop and retries, for up to ``busy_timeout_ms``. Servers
keep the threaded driver.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

BUSY_RETRY_S = 0.001  # the lock holder runs meanwhile


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class _InlineQueue:
    """Stands in for aiosqlite's job queue, which SQLAlchemy's isolation-level setter uses
    directly: runs the job at once and resolves its future."""

    def put_nowait(self, job: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = job
        try:
            result = function()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller, as aiosqlite does
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineCursor:
    """aiosqlite's ``Cursor`` API over a ``sqlite3.Cursor``, run in place."""

    def __init__(self, cursor: sqlite3.Cursor, busy_timeout_s: float) -> None:
        self._cursor = cursor
        self._busy_timeout_s = busy_timeout_s

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> InlineCursor:
        args = () if parameters is None else parameters
        await self._retrying(self._cursor.execute, sql, args)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> InlineCursor:
        await self._retrying(self._cursor.executemany, sql, list(parameters))
        return self

    async def _retrying(self, run: Callable[[str, Any], object], sql: str, args: Any) -> None:
        # SQLITE_BUSY comes before the statement changed anything (BEGIN IMMEDIATE takes
        # every lock up front), so running it again is safe.
        deadline: float | None = None
        while True:
            try:
                run(sql, args)
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self._busy_timeout_s
                if now >= deadline:
                    raise
            await asyncio.sleep(BUSY_RETRY_S)

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """aiosqlite's ``Connection`` API over a ``sqlite3.Connection``, run in place."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout_s: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._busy_timeout_s = busy_timeout_s
        self._tx = _InlineQueue()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        # aiosqlite's cursor() is awaited or entered; SQLAlchemy enters it
        return InlineCursor(self._conn.cursor(), self._busy_timeout_s)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


def inline_connector(database: str, busy_timeout_ms: int) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: connections on ``database``
    (``PRAGMA busy_timeout = 0``; a locked database is waited for by yielding, up to
    ``busy_timeout_ms``)."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(database, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout = 0")
        return InlineConnection(connection, busy_timeout_ms / 1000)

    return connect
