"""``create_engine(url, batch=True)``: SQLite on the event loop's thread (the demo's replay)
behaves like the threaded driver: attached schemas, transactions, rollback, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.sqlite_inline import InlineConnection


@pytest.fixture
async def batch_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'batch.db'}", batch=True)
    try:
        yield engine
    finally:
        await engine.dispose()


class TestBatchSqliteEngine:
    async def test_commits_rolls_back_and_raises_like_the_threaded_driver(
        self, batch_engine: AsyncEngine
    ) -> None:
        sessions = session_factory(batch_engine)
        async with UnitOfWork(sessions) as uow:
            raw = await uow.session.connection()
            driver = (await raw.get_raw_connection()).driver_connection
            assert isinstance(driver, InlineConnection)
            await uow.session.execute(
                text("CREATE TABLE notify.t (id INTEGER PRIMARY KEY, v TEXT)")
            )
            await uow.session.execute(
                text("INSERT INTO notify.t (id, v) VALUES (:id, :v)"),
                [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}],
            )
            await uow.commit()
        async with UnitOfWork(sessions) as uow:
            await uow.session.execute(text("INSERT INTO notify.t (id, v) VALUES (3, 'c')"))
            # left without commit: rolled back
        async with UnitOfWork(sessions) as uow:
            with pytest.raises(IntegrityError):
                await uow.session.execute(text("INSERT INTO notify.t (id, v) VALUES (1, 'x')"))
        async with UnitOfWork(sessions) as uow:
            rows = (await uow.session.execute(text("SELECT id, v FROM notify.t ORDER BY id")))
            assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
            mode = (await uow.session.execute(text("PRAGMA notify.synchronous"))).scalar()
            assert mode == 0  # OFF: a throwaway database

    async def test_a_transaction_waiting_for_the_lock_lets_its_holder_run(
        self, batch_engine: AsyncEngine
    ) -> None:
        # SQLite's own busy wait would block the loop, and with it the holder, for the
        # whole busy_timeout; the inline driver yields and retries instead.
        sessions = session_factory(batch_engine)
        async with UnitOfWork(sessions) as uow:
            await uow.session.execute(text("CREATE TABLE notify.t (v TEXT)"))
            await uow.commit()
        holding = asyncio.Event()

        async def holder() -> None:
            async with UnitOfWork(sessions) as uow:
                await uow.session.execute(text("INSERT INTO notify.t VALUES ('first')"))
                holding.set()
                await asyncio.sleep(0.2)
                await uow.commit()

        async def waiter() -> None:
            await holding.wait()
            async with UnitOfWork(sessions) as uow:
                await uow.session.execute(text("INSERT INTO notify.t VALUES ('second')"))
                await uow.commit()

        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(holder(), waiter()), timeout=10)
        assert time.monotonic() - started < 5
        async with UnitOfWork(sessions) as uow:
            rows = await uow.session.execute(text("SELECT v FROM notify.t ORDER BY rowid"))
            assert [r[0] for r in rows] == ["first", "second"]

    async def test_the_default_engine_keeps_durable_commits(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
        try:
            async with UnitOfWork(session_factory(engine)) as uow:
                raw = await uow.session.connection()
                driver = (await raw.get_raw_connection()).driver_connection
                assert not isinstance(driver, InlineConnection)
                mode = (await uow.session.execute(text("PRAGMA notify.synchronous"))).scalar()
                assert mode == 1  # NORMAL
        finally:
            await engine.dispose()
