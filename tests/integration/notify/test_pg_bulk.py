"""Bulk job inserts on PostgreSQL: COPY straight into ``jobs``, and the ON CONFLICT path
when some idempotency key exists (a second writer got there first)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import UnitOfWork, session_factory
from services.notify.domain.model import JobSpec
from services.notify.pg_bulk import COPY_THRESHOLD
from services.notify.repository import StateRepository
from tests.integration.notify.conftest import DATABASE, _ensure_database

NOW = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)


def specs(customers: range) -> list[JobSpec]:
    return [JobSpec("I1", f"C{i:06d}", "outage_detected", 0, NOW) for i in customers]


async def insert(engine: AsyncEngine, jobs: list[JobSpec]) -> None:
    async with UnitOfWork(session_factory(engine)) as uow:
        await StateRepository(uow.session).insert_jobs(jobs, NOW)
        await uow.commit()


async def keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT customer_id FROM notify.jobs ORDER BY id"))
        return [r.customer_id for r in rows]


@pytest.fixture(params=["postgres"])
def notify_db_url(request: pytest.FixtureRequest, pg_url: str) -> str:
    """PostgreSQL only: COPY is its path (SQLite takes executemany)."""
    return asyncio.run(_ensure_database(pg_url, DATABASE))


class TestBulkJobInsert:
    async def test_a_big_batch_is_copied_in_order(self, notify_engine: AsyncEngine) -> None:
        n = COPY_THRESHOLD + 10
        await insert(notify_engine, specs(range(n)))
        assert await keys(notify_engine) == [f"C{i:06d}" for i in range(n)]

    async def test_existing_keys_are_skipped_and_the_rest_inserted(
        self, notify_engine: AsyncEngine
    ) -> None:
        await insert(notify_engine, specs(range(5, 8)))  # a second writer's jobs
        n = COPY_THRESHOLD + 10
        await insert(notify_engine, specs(range(n)))
        found = await keys(notify_engine)
        assert sorted(found) == [f"C{i:06d}" for i in range(n)]
        assert len(found) == len(set(found)) == n
