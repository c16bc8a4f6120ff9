"""Fixtures for the shared-runtime tests: a PostgreSQL database of their own
(``outagedesk_common``, so other suites can run at the same time) and SQLite files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.common.orm import SCHEMAS

DATABASE = "outagedesk_common"


async def _recreate_schemas(url: str) -> None:
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
        for schema in SCHEMAS:
            await conn.execute(f'drop schema if exists "{schema}" cascade')
    finally:
        await conn.close()


@pytest.fixture
def common_pg_url(pg_url: str) -> str:
    """URL of this suite's own database, emptied of every OutageDesk schema."""
    asyncio.run(_recreate_schemas(pg_url))
    return make_url(pg_url).set(database=DATABASE).render_as_string(hide_password=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test body on PostgreSQL and on SQLite."""
    name = "common_pg_url" if request.param == "postgres" else "sqlite_url"
    url: str = request.getfixturevalue(name)
    return url
