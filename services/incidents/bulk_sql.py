"""Multi-row writes as ONE statement on PostgreSQL: ``INSERT … SELECT … FROM
json_populate_recordset(NULL::table, :rows)``.

asyncpg's ``executemany`` runs the statement once per row, so the statement-level roll-up
triggers on ``interruptions`` (migration incidents_0006) ran once per row, and every row
paid a round of parameter binding in SQLAlchemy. Here the rows travel as one JSON text
parameter (one orjson call), typed by the table's row type, the triggers see one
transition table per batch, and the rows land exactly as the per-row statements would
have left them (timestamps are aware UTC datetimes, serialised with their offset).
SQLite (row-level triggers, one writer) keeps the executemany path of the callers.
"""

# ruff: noqa: S608 - statements are built from table metadata and constant text, no input
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def is_postgres(session: AsyncSession) -> bool:
    """True when the session's database is PostgreSQL."""
    return bool(session.get_bind().dialect.name == "postgresql")


def quote(name: str) -> str:
    """A column name as PostgreSQL needs it (``end`` is reserved)."""
    return _PG.identifier_preparer.quote(name)


def qualified(table: sa.Table) -> str:
    """``schema.table``."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def rows_source(table: sa.Table, alias: str = "u") -> str:
    """``json_populate_recordset(NULL::<table>, :rows) AS u``: the rows of :func:`rows_param`
    typed as the table's own row type (missing columns NULL)."""
    rows = "CAST(CAST(:rows AS TEXT) AS json)"
    return f"json_populate_recordset(CAST(NULL AS {qualified(table)}), {rows}) AS {alias}"


def select_list(columns: Sequence[str], alias: str = "u") -> str:
    """``u.col, …`` for ``columns`` of :func:`rows_source`."""
    return ", ".join(f"{alias}.{quote(c)}" for c in columns)


def rows_param(
    columns: Sequence[str], rows: Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """The one parameter carrying ``rows`` (tuples in column order, or dicts by column):
    a JSON array of objects, serialised by orjson in one call (asyncpg's array encoding
    checked every element's type in Python; one text parameter costs nothing per value)."""
    if rows and isinstance(rows[0], Mapping):
        return {"rows": orjson.dumps(rows).decode()}
    return {"rows": orjson.dumps([dict(zip(columns, r, strict=True)) for r in rows]).decode()}


async def insert_rows(
    session: AsyncSession,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] | Mapping[str, str] = (),
    where: str | None = None,
) -> None:
    """One ``INSERT … SELECT …`` of ``rows`` (tuples of ``columns`` or dicts with exactly
    those keys; PostgreSQL only).

    ``conflict`` names the unique columns (empty: any conflict): with ``update`` empty the
    statement does nothing on a conflict, else it sets each ``update`` column to ``excluded.col`` (a
    mapping gives the SQL expression per column; the existing row is ``t``), where the
    SQL condition ``where`` holds (if given).
    """
    if not rows:
        return
    sql = (
        f"INSERT INTO {qualified(table)} AS t ({', '.join(quote(c) for c in columns)}) "
        f"SELECT {select_list(columns)} FROM {rows_source(table)}"
    )
    if conflict is not None:
        target = f" ({', '.join(quote(c) for c in conflict)})" if conflict else ""
        if not update:
            sql += f" ON CONFLICT{target} DO NOTHING"
        else:
            sets = (
                update.items() if isinstance(update, Mapping)
                else ((c, f"excluded.{quote(c)}") for c in update)
            )  # fmt: skip
            assignments = ", ".join(f"{quote(c)} = {expr}" for c, expr in sets)
            sql += f" ON CONFLICT{target} DO UPDATE SET {assignments}"
            if where is not None:
                sql += f" WHERE {where}"
    await session.execute(sa.text(sql), rows_param(columns, rows))
