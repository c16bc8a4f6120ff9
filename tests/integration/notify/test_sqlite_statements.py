"""The sender's and handler's plain-SQL statements on SQLite run on the session's own
driver connection: inside its transaction, and failing as SQLAlchemy errors (which the
service's retry loops wait out) rather than as raw sqlite3 ones. Both drivers: the
threaded aiosqlite one of the servers and the demo's inline one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.backoff import RETRYABLE_ERRORS
from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate_engine
from services.notify.sqlite_queue import fetch, run, run_many

OPT_OUT = "INSERT INTO notify.opt_outs (customer_id, at, source) VALUES (?, ?, ?)"
COUNT = "SELECT count(*) FROM notify.opt_outs"


@pytest.fixture(params=[False, True], ids=["aiosqlite", "inline"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", batch=request.param)
    try:
        await migrate_engine(engine, schemas=["notify"])
        yield engine
    finally:
        await engine.dispose()


class TestSqliteStatements:
    async def test_they_run_in_the_sessions_transaction(self, engine: AsyncEngine) -> None:
        sessions = session_factory(engine)
        async with UnitOfWork(sessions) as uow:
            changed = await run_many(uow.session, OPT_OUT, [("C1", "2026-07-14 00:00:00.000000",
                                                              None), ("C2", "x", None)])
            assert changed == 2
            assert await fetch(uow.session, COUNT) == [(2,)]
            # no commit: rolled back with the unit of work
        async with UnitOfWork(sessions) as uow:
            assert await fetch(uow.session, COUNT) == [(0,)]
            await run(uow.session, OPT_OUT, ("C3", "x", "sms"))
            await uow.commit()
        async with UnitOfWork(sessions) as uow:
            assert await fetch(uow.session, "SELECT customer_id, source FROM notify.opt_outs") \
                == [("C3", "sms")]  # fmt: skip

    async def test_driver_errors_are_sqlalchemy_errors(self, engine: AsyncEngine) -> None:
        async with UnitOfWork(session_factory(engine)) as uow:
            with pytest.raises(OperationalError) as raised:
                await fetch(uow.session, "SELECT * FROM notify.no_such_table")
            assert isinstance(raised.value, RETRYABLE_ERRORS)
