"""What every schema's Alembic ``env.py`` runs: one migration environment per schema.

Each environment keeps its ``alembic_version`` table in its own schema and, on PostgreSQL,
creates that schema first. :mod:`services.common.migrate` hands over an open connection in
``config.attributes["connection"]``; without one (plain ``alembic`` on the command line) the
URL comes from ``sqlalchemy.url`` or ``OUTAGEDESK_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from services.common.orm import SCHEMAS


def run_env(schema: str, target_metadata: MetaData | None) -> None:
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}")
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported; run against a database")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection, schema, target_metadata)
        return
    asyncio.run(_run_with_own_engine(schema, target_metadata))


async def _run_with_own_engine(schema: str, target_metadata: MetaData | None) -> None:
    from services.common.db import create_engine
    from services.common.settings import CommonSettings

    url = context.config.get_main_option("sqlalchemy.url") or CommonSettings().database_url
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run, schema, target_metadata)
    finally:
        await engine.dispose()


def _run(connection: Connection, schema: str, target_metadata: MetaData | None) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))

    def include_name(name: str | None, type_: str, _parent: Any) -> bool:
        # Autogenerate looks at this schema only; the others have their own environments.
        return type_ != "schema" or name == schema

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        render_as_batch=sqlite,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
