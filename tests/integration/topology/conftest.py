"""A PostgreSQL database of this suite's own (``outagedesk_b``) and SQLite files, each with
a freshly migrated ``topology`` schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine
from services.common.migrate import migrate_engine

DATABASE = "outagedesk_b"


async def _recreate_topology_schema(url: str) -> None:
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE):
            await conn.execute(f'create database "{DATABASE}"')
    finally:
        await conn.close()
    own = make_url(url).set(drivername="postgresql", database=DATABASE)
    conn = await asyncpg.connect(own.render_as_string(hide_password=False), timeout=10)
    try:
        await conn.execute('drop schema if exists "topology" cascade')
    finally:
        await conn.close()


@pytest.fixture
def topology_pg_url(pg_url: str) -> str:
    asyncio.run(_recreate_topology_schema(pg_url))
    return make_url(pg_url).set(database=DATABASE).render_as_string(hide_password=False)


@pytest.fixture(params=["postgres", "sqlite"])
def topology_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test body on PostgreSQL and on SQLite (an empty database)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    url: str = request.getfixturevalue("topology_pg_url")
    return url


@pytest.fixture
async def engine(topology_db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database whose ``topology`` schema is migrated and empty."""
    instance = create_engine(topology_db_url)
    try:
        await migrate_engine(instance, schemas=("topology",))
        yield instance
    finally:
        await instance.dispose()
