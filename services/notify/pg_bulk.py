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

COPY_THRESHOLD = 500  # below this, one statement over unnest arrays is as fast

INTERRUPTION_COLUMNS = ("incident_id", "customer_id", "started_at", "restored_at",
                        "restore_verified", "moved_from", "moved_to", "reported")  # fmt: skip
# One statement for any number of rows: SQLAlchemy's executemany ran the upsert once per
# row (150,000 statements in the 200,000-customer storm, each also a round of Python).
UPSERT_INTERRUPTIONS = """
INSERT INTO notify.interruptions (incident_id, customer_id, started_at, restored_at,
    restore_verified, moved_from, moved_to, reported)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                     $5::bool[], $6::text[], $7::text[], $8::bool[])
ON CONFLICT (incident_id, customer_id) DO UPDATE SET started_at = excluded.started_at,
    restored_at = excluded.restored_at, restore_verified = excluded.restore_verified,
    moved_from = excluded.moved_from, moved_to = excluded.moved_to,
    reported = excluded.reported
"""


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


async def upsert_interruptions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update notify's interruption rows (keyed by incident and customer; at most
    one row per key), in the session's transaction."""
    if not rows:
        return
    driver = await driver_connection(session, begin=True)
    await driver.execute(
        UPSERT_INTERRUPTIONS, *([row[c] for row in rows] for c in INTERRUPTION_COLUMNS)
    )
