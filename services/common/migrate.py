"""Run every schema's Alembic migrations programmatically (no alembic.ini at runtime).

Schemas migrate in :data:`SCHEMAS` order, each in its own transaction; on PostgreSQL an
advisory lock serialises services that migrate at start-up at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import create_engine
from services.common.orm import SCHEMAS

SCRIPT_LOCATIONS: dict[str, str] = {
    "topology": "services.common.topology:migrations",
    "ingest": "services.ingest:migrations",
    "incidents": "services.incidents:migrations",
    "notify": "services.notify:migrations",
}
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(slug)s"
_LOCK_KEY = 0x0D_E5_C0_01  # arbitrary, constant: "outagedesk migrations"


def alembic_config(schema: str, connection: Connection | None = None) -> Config:
    """An Alembic Config for ``schema``'s environment, optionally bound to a connection."""
    if schema not in SCRIPT_LOCATIONS:
        raise ValueError(f"unknown schema {schema!r}; expected one of {tuple(SCRIPT_LOCATIONS)}")
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATIONS[schema])
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(sync: Connection, schema: str, target: str) -> None:
    command.upgrade(alembic_config(schema, sync), target)


def _downgrade(sync: Connection, schema: str, target: str) -> None:
    command.downgrade(alembic_config(schema, sync), target)


async def _locked(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


async def migrate_engine(
    engine: AsyncEngine, target: str = "head", schemas: Iterable[str] = SCHEMAS
) -> None:
    """Upgrade each schema to ``target`` on an existing engine (keeps in-memory SQLite)."""
    for schema in schemas:
        async with engine.begin() as conn:
            await _locked(conn)
            await conn.run_sync(_upgrade, schema, target)


async def downgrade_engine(engine: AsyncEngine, schema: str, target: str = "base") -> None:
    async with engine.begin() as conn:
        await _locked(conn)
        await conn.run_sync(_downgrade, schema, target)


async def migrate(url: str, target: str = "head", schemas: Iterable[str] = SCHEMAS) -> None:
    """Upgrade every schema in ``schemas`` of the database at ``url`` to ``target``."""
    engine = create_engine(url)
    try:
        await migrate_engine(engine, target, schemas)
    finally:
        await engine.dispose()


async def downgrade(url: str, schema: str, target: str = "base") -> None:
    """Downgrade one schema of the database at ``url`` to ``target`` (default: nothing)."""
    engine = create_engine(url)
    try:
        await downgrade_engine(engine, schema, target)
    finally:
        await engine.dispose()


async def current_revisions(engine: AsyncEngine) -> dict[str, str | None]:
    """Each schema's applied revision (None: not migrated)."""

    def read(sync: Connection) -> dict[str, str | None]:
        return {
            schema: MigrationContext.configure(
                sync, opts={"version_table_schema": schema}
            ).get_current_revision()
            for schema in SCHEMAS
        }

    async with engine.connect() as conn:
        return await conn.run_sync(read)
