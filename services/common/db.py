"""Engines, sessions and the unit of work, for PostgreSQL (asyncpg) and SQLite (aiosqlite).

On SQLite every schema of :data:`services.common.orm.SCHEMAS` is an attached database, so
schema-qualified names (``incidents.outbox``) mean the same thing on both engines:
``sqlite+aiosqlite:///path/app.db`` attaches ``path/app.<schema>.db``. An in-memory URL
(``sqlite+aiosqlite://`` or ``…/:memory:``) uses one shared connection (StaticPool) so the
attached in-memory databases live as long as the engine; concurrent transactions are then
serialised on that connection, which is fine for tests and nothing else.

SQLite caveat: with WAL, a transaction that writes to two attached files is atomic per file
only. Each service writes its own schema, and the tables written together (state, outbox,
consumer offsets) live in that one schema, hence one file.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from services.common.orm import SCHEMAS
from services.common.sqlite_inline import inline_connector

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_POOL_SIZE = 10
POSTGRES_MAX_OVERFLOW = 10


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False, batch: bool = False) -> AsyncEngine:
    """An async engine for ``postgresql+asyncpg://…`` or ``sqlite+aiosqlite://…``.

    ``batch=True`` (the demo's replay, SQLite files only; ignored otherwise): one task
    drives a throwaway database, so SQLite calls run on the event loop's thread
    (:mod:`services.common.sqlite_inline`) and commits skip the fsync (``synchronous =
    OFF``: a crash loses the run, which is started over anyway)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return create_async_engine(
            parsed,
            echo=echo,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_MAX_OVERFLOW,
            pool_pre_ping=True,  # a restarted server leaves dead connections in the pool
            pool_recycle=1800,
            pool_timeout=30,
            connect_args={"timeout": 10, "command_timeout": 60},
        )
    if backend == "sqlite":
        return _create_sqlite_engine(parsed, echo=echo, batch=batch)
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}")


def _sqlite_attachments(url: URL) -> dict[str, str] | None:
    """Schema → database file to attach, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:":
        return None
    main = Path(database)
    return {schema: str(main.with_name(f"{main.stem}.{schema}{main.suffix}")) for schema in SCHEMAS}


def _create_sqlite_engine(url: URL, *, echo: bool, batch: bool) -> AsyncEngine:
    files = _sqlite_attachments(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if files is None:
        batch = False
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        Path(files[SCHEMAS[0]]).parent.mkdir(parents=True, exist_ok=True)
        if batch:
            assert url.database is not None
            kwargs["async_creator"] = inline_connector(
                str(Path(url.database).absolute()), SQLITE_BUSY_TIMEOUT_MS
            )
    synchronous = "OFF" if batch else "NORMAL"
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level; transactions are begun explicitly below, because
        # the driver's own deferred BEGIN would run SELECTs outside any transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # inline (batch) connections wait by yielding to the loop instead
            busy_timeout_ms = 0 if batch else SQLITE_BUSY_TIMEOUT_MS
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            for schema in SCHEMAS:
                target = ":memory:" if files is None else files[schema]
                cursor.execute("ATTACH DATABASE ? AS " + _quote(schema), (target,))
            if files is not None:
                for name in ("main", *SCHEMAS):
                    cursor.execute(f"PRAGMA {_quote(name)}.journal_mode = WAL")
                    cursor.execute(f"PRAGMA {_quote(name)}.synchronous = {synchronous}")
                    if batch:  # the whole working set in memory (tens of MB for the demo)
                        cursor.execute(f"PRAGMA {_quote(name)}.cache_size = -65536")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: read-then-write transactions (claims,
        # offset checks) then wait on busy_timeout instead of failing with SQLITE_BUSY.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _quote(identifier: str) -> str:
    if not identifier.isidentifier():
        raise ValueError(f"bad SQL identifier {identifier!r}")
    return f'"{identifier}"'


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class UnitOfWork:
    """One transaction; only the unit of work commits.

    ``async with UnitOfWork(sessions) as uow: ...; await uow.commit()`` — leaving the block
    without ``commit()`` (or with an exception) rolls back.
    """

    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.rollback()  # no-op after commit()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()
