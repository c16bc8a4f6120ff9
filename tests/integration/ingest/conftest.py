"""Fixtures for the ingest integration tests: a migrated database of their own on the real
PostgreSQL (``outagedesk_g``), and a run id that tells this run's
messages from what earlier runs left on the real broker's topics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import create_engine, session_factory
from services.common.migrate import migrate_engine

DATABASE = "outagedesk_g"


async def _ensure_database(server_url: str, name: str) -> str:
    url = make_url(server_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def ingest_sessions(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on migrated ``topology`` and ``ingest`` schemas; dead letters emptied."""
    url = await _ensure_database(pg_url, DATABASE)
    engine = create_engine(url)
    try:
        await migrate_engine(engine, schemas=["topology", "ingest"])
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE ingest.dead_letters RESTART IDENTITY"))
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]
