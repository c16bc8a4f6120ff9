"""Fixtures for the incidents service tests: migrated databases of their own on the real
PostgreSQL (``outagedesk_i1_a`` / ``_b``, so two runs can be compared) and SQLite files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from incidents_db import fresh_pg_database  # type: ignore[import-not-found]
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import create_engine, session_factory
from services.common.migrate import migrate_engine

DATABASES = ("outagedesk_i1_a", "outagedesk_i1_b", "outagedesk_i1_k")

Sessions = async_sessionmaker[AsyncSession]


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
