"""An aiosqlite look-alike that runs each SQLite call on the event loop's own thread.

aiosqlite hands every call (cursor, execute, fetch, close, commit) to a worker thread and
back (a queue put, a thread wake-up, ``call_soon_threadsafe`` and a self-pipe write), four
or five round trips per statement. For a single-task batch job on a local file (the
demo's replay) that hand-off costs more than the statement. The connection here offers the
part of aiosqlite's API that SQLAlchemy's ``sqlite+aiosqlite`` dialect uses, with
coroutines that never suspend.

Only for one task driving the database at a time: a call blocks the event loop, so a
transaction waiting on another connection's lock would wait out ``busy_timeout`` with the
lock holder unable to run. Servers keep the threaded driver.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any


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

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> InlineCursor:
        self._cursor.execute(sql, () if parameters is None else parameters)  # type: ignore[arg-type]
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)  # type: ignore[arg-type]
        return self

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

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = connection
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
        return InlineCursor(self._conn.cursor())

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


def inline_connector(database: str) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: connections on ``database``."""

    async def connect() -> InlineConnection:
        return InlineConnection(sqlite3.connect(database, check_same_thread=False))

    return connect
