"""Fixtures for the incidents service tests: migrated databases of their own on the real
PostgreSQL (``outagedesk_i1_a`` / ``_b``, so two runs can be compared) and SQLite files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import create_engine, session_factory
from services.common.migrate import migrate_engine

DATABASES = ("outagedesk_i1_a", "outagedesk_i1_b", "outagedesk_i1_k")

Sessions = async_sessionmaker[AsyncSession]


async def fresh_pg_database(server_url: str, name: str) -> str:
    """An emptied database ``name`` on the server of ``server_url``, migrated; its URL."""
    url = make_url(server_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    own = url.set(drivername="postgresql", database=name)
    conn = await asyncpg.connect(own.render_as_string(hide_password=False), timeout=10)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS incidents CASCADE")
    finally:
        await conn.close()
    target = url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(target)
    try:
        await migrate_engine(engine, schemas=["incidents"])
    finally:
        await engine.dispose()
    return target


@pytest.fixture(params=["postgres", "sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """ "sqlite", or the PostgreSQL server URL (resolved here, outside the event loop,
    because the server check runs its own loop)."""
    if request.param == "sqlite":
        return "sqlite"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def make_sessions(db_kind: str, tmp_path: Path) -> AsyncIterator[Callable[[int], Any]]:
    """``await make_sessions(i)``: sessions on the i-th fresh, migrated database."""
    engines: list[Any] = []

    async def make(i: int) -> Sessions:
        if db_kind != "sqlite":
            url = await fresh_pg_database(db_kind, DATABASES[i])
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / f'run{i}.db'}"
        engine = create_engine(url)
        if db_kind == "sqlite":
            await migrate_engine(engine, schemas=["incidents"])
        engines.append(engine)
        return session_factory(engine)

    try:
        yield make
    finally:
        for engine in engines:
            await engine.dispose()
