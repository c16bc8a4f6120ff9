"""A fresh, migrated PostgreSQL database per test run (own names, so suites run at once)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url

from services.common.db import create_engine
from services.common.migrate import migrate_engine


async def fresh_pg_database(server_url: str, name: str) -> str:
    """An emptied database ``name`` on the server of ``server_url`` (empty topology and
    incidents schemas, migrated); its URL."""
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
        # topology too: interruption rows are stamped from it, so a topology left by an
        # earlier test would make two runs of one scenario differ
        await conn.execute("DROP SCHEMA IF EXISTS incidents CASCADE")
        await conn.execute("DROP SCHEMA IF EXISTS topology CASCADE")
    finally:
        await conn.close()
    target = url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(target)
    try:
        await migrate_engine(engine, schemas=["topology", "incidents"])
    finally:
        await engine.dispose()
    return target
