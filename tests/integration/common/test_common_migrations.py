from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from services.common.db import create_engine
from services.common.migrate import (
    SCRIPT_LOCATIONS,
    alembic_config,
    current_revisions,
    downgrade,
    migrate,
)
from services.common.orm import SCHEMAS


def _tables(sync: Connection) -> dict[str, set[str]]:
    inspector = inspect(sync)
    return {s: set(inspector.get_table_names(schema=s)) - {"alembic_version"} for s in SCHEMAS}


async def _state(url: str) -> tuple[dict[str, str | None], dict[str, set[str]]]:
    engine = create_engine(url)
    try:
        revisions = await current_revisions(engine)
        async with engine.connect() as conn:
            tables = await conn.run_sync(_tables)
        return revisions, tables
    finally:
        await engine.dispose()


def _heads() -> dict[str, str | None]:
    return {s: ScriptDirectory.from_config(alembic_config(s)).get_current_head() for s in SCHEMAS}


class TestMigrations:
    async def test_upgrade_creates_tables_and_downgrade_removes_them(self, db_url: str) -> None:
        await migrate(db_url)
        revisions, tables = await _state(db_url)
        assert revisions == _heads()
        assert {"consumer_offsets", "outbox"} <= tables["incidents"]
        assert {"consumer_offsets", "outbox"} <= tables["notify"]

        for schema in reversed(SCHEMAS):
            await downgrade(db_url, schema)
        revisions, tables = await _state(db_url)
        assert revisions == dict.fromkeys(SCHEMAS)
        assert tables == {s: set() for s in SCHEMAS}

        await migrate(db_url)  # and up again from base
        revisions, _ = await _state(db_url)
        assert revisions == _heads()

    async def test_upgrade_twice_is_a_no_op(self, db_url: str) -> None:
        await migrate(db_url)
        first = await _state(db_url)
        await migrate(db_url)
        assert await _state(db_url) == first

    def test_every_schema_has_an_environment(self) -> None:
        assert set(SCRIPT_LOCATIONS) == set(SCHEMAS)
