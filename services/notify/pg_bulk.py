"""PostgreSQL COPY for the big inserts of a feeder-wide outage (100,000 jobs at once).

``executemany`` through SQLAlchemy costs tens of microseconds of Python per row; COPY
(asyncpg ``copy_records_to_table``) streams rows in binary. Rows that may conflict (jobs:
the idempotency key) are first copied straight into the table inside a savepoint: the
caller has already left out the keys it knows, so a conflict is rare (a concurrent
writer). Only then are they copied into a temporary table and moved with
``INSERT … SELECT … ON CONFLICT DO NOTHING``, which costs PostgreSQL about twice the
work of the direct COPY. Everything runs on the session's connection, inside its
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

COPY_THRESHOLD = 500  # below this, a plain executemany is as fast


async def driver_connection(session: AsyncSession, *, begin: bool = False) -> Any:
    """The asyncpg connection under ``session``; ``begin``: make sure the session's
    transaction has begun on it (SQLAlchemy begins it with the first statement it runs
    itself), so raw statements are part of that transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if begin and not driver.is_in_transaction():
        await session.execute(text("SELECT 1"))
    return driver


async def copy_rows(
    session: AsyncSession,
    schema: str,
    table: str,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
    *,
    conflict: Sequence[str] | None = None,
) -> None:
    """COPY ``records`` into ``schema.table``; with ``conflict`` (the unique columns) rows
    whose key exists are skipped."""
    driver = await driver_connection(session, begin=conflict is not None)
    if conflict is None:
        await driver.copy_records_to_table(
            table, schema_name=schema, columns=list(columns), records=records
        )
        return
    # A raw savepoint: SQLAlchemy's own (begin_nested) ends the whole transaction when
    # rolled back after an error raised on the driver connection.
    await driver.execute("SAVEPOINT notify_copy")
    try:
        await driver.copy_records_to_table(
            table, schema_name=schema, columns=list(columns), records=records
        )
    except UniqueViolationError:
        await driver.execute("ROLLBACK TO SAVEPOINT notify_copy")
    else:
        await driver.execute("RELEASE SAVEPOINT notify_copy")
        return
    staging = f"_in_{table}"
    cols = ", ".join(f'"{c}"' for c in columns)
    await driver.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" '
        f'(LIKE "{schema}"."{table}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
    )
    await driver.execute(f'TRUNCATE "{staging}"')
    await driver.copy_records_to_table(staging, columns=list(columns), records=records)
    keys = ", ".join(f'"{c}"' for c in conflict)
    await driver.execute(
        f'INSERT INTO "{schema}"."{table}" ({cols}) SELECT {cols} FROM "{staging}" '  # noqa: S608
        f"ON CONFLICT ({keys}) DO NOTHING"
    )
