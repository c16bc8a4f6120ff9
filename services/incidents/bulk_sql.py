"""Multi-row writes: ONE statement on PostgreSQL (``INSERT … SELECT … FROM
json_populate_recordset(NULL::table, :rows)``), one driver ``executemany`` on SQLite.

asyncpg's ``executemany`` runs the statement once per row, so the statement-level roll-up
triggers on ``interruptions`` (migration incidents_0006) ran once per row, and every row
paid a round of parameter binding in SQLAlchemy. Here the rows travel as one JSON text
parameter (one orjson call), typed by the table's row type, the triggers see one
transition table per batch, and the rows land exactly as the per-row statements would
have left them (timestamps are aware UTC datetimes, serialised with their offset).
On SQLite (row-level triggers, one writer) the same call runs ``INSERT … VALUES (?, …)`` as
the driver's ``executemany``, each value converted by its column type's own bind processor
(so rows are stored exactly as SQLAlchemy would store them), without SQLAlchemy building a
parameter dictionary per row, which cost more than the insert itself.
"""

# ruff: noqa: S608 - statements are built from table metadata and constant text, no input
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def is_postgres(session: AsyncSession) -> bool:
    """True when the session's database is PostgreSQL."""
    return bool(session.get_bind().dialect.name == "postgresql")


IN_LIST_SIZE = 500  # values per IN (...) list: keeps SQLite under its bound-parameter limit


def chunks(items: Sequence[str], size: int = IN_LIST_SIZE) -> Iterator[Sequence[str]]:
    """``items`` in slices of ``size`` (one IN-list each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def among(
    session: AsyncSession, column: sa.ColumnElement[str], values: Sequence[str]
) -> Iterator[sa.ColumnElement[bool]]:
    """Conditions ``column IN values``, one per statement to run (none for no values).

    PostgreSQL: ONE condition, ``column IN (SELECT unnest(:array))``: one prepared statement
    for any count, planned as a set (a nested loop over the index or a hash semi-join).
    Where the generic plan filters rows instead of probing an index, an ``IN ($1, …, $n)``
    list or ``= ANY(:array)`` is searched linearly per row: the incidents' processed-signals
    check took 138 ms for 2,000 ids against 190,000 rows in the 200,000-customer storm (a
    sequential scan), 12 ms as a set.
    SQLite: IN-lists of :data:`IN_LIST_SIZE` values."""
    if not values:
        return
    if is_postgres(session):
        ids = sa.select(sa.func.unnest(sa.bindparam("among", list(values), ARRAY(sa.Text))))
        yield column.in_(ids.scalar_subquery())
        return
    for part in chunks(values):
        yield column.in_(part)


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
    """Insert ``rows`` (tuples of ``columns`` or dicts with at least those keys) in one
    statement.

    ``conflict`` names the unique columns (empty: any conflict): with ``update`` empty the
    statement does nothing on a conflict, else it sets each ``update`` column to ``excluded.col`` (a
    mapping gives the SQL expression per column; the existing row is ``t``), where the
    SQL condition ``where`` holds (if given).
    """
    if not rows:
        return
    postgres = is_postgres(session)
    values = (
        f"SELECT {select_list(columns)} FROM {rows_source(table)}" if postgres
        else f"VALUES ({', '.join('?' for _ in columns)})"
    )  # fmt: skip
    sql = f"INSERT INTO {qualified(table)} AS t ({', '.join(quote(c) for c in columns)}) {values}"
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
    if postgres:
        await session.execute(sa.text(sql), rows_param(columns, rows))
        return
    conn = await session.connection()
    processors = _bind_processors(table, tuple(columns), conn.dialect)
    converted = [(i, p) for i, p in enumerate(processors) if p is not None]
    params: list[tuple[Any, ...]] = []  # SQLAlchemy takes tuples only
    for r in rows:
        row = [r[c] for c in columns] if isinstance(r, Mapping) else list(r)
        for i, p in converted:
            if (v := row[i]) is not None:
                row[i] = p(v)
        params.append(tuple(row))
    await conn.exec_driver_sql(sql, params)


@lru_cache(maxsize=1024)
def _bind_processors(
    table: sa.Table, columns: tuple[str, ...], dialect: Any
) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each column's bind processor on ``dialect`` (None: the value goes as it is)."""
    return tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
