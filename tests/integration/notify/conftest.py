"""Fixtures for the notify service tests: a database of their own on the real PostgreSQL
(``outagedesk_n``) or a SQLite file, migrated for schema ``notify`` and emptied per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine
from services.common.migrate import migrate_engine
from tests.integration.notify.service_harness import SmsGateway

DATABASE = "outagedesk_n"


async def _ensure_database(server_url: str, name: str) -> str:
    url = make_url(server_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["postgres", "sqlite"])
def notify_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """This suite's own PostgreSQL database, or a SQLite file (resolved outside the event
    loop, because the server check runs its own loop)."""
    if request.param == "postgres":
        return asyncio.run(_ensure_database(request.getfixturevalue("pg_url"), DATABASE))
    return f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}"


@pytest.fixture
async def notify_engine(notify_db_url: str) -> AsyncIterator[AsyncEngine]:
    """A freshly migrated ``notify`` schema on PostgreSQL and on SQLite."""
    engine = create_engine(notify_db_url)
    try:
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                await conn.execute(text('DROP SCHEMA IF EXISTS "notify" CASCADE'))
        await migrate_engine(engine, schemas=["notify"])
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    server = SmsGateway.start()
    try:
        yield server
    finally:
        server.stop()
