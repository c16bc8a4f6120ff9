"""Stamp interruption rows with their customer's feeder, substation and area.

The reliability report groups millions of interruption rows; reading the groups from the
rows themselves instead of joining the 1,000,000-customer topology at report time is what
keeps a year's report under a second. The groups are taken from the topology when a row is
first written (a customer moved to another feeder later keeps its past interruptions on
the old one, as they happened there); customers missing from the topology stay NULL and
report as ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology import orm as topo
from services.common.topology.model import Topology
from services.incidents import orm
from services.incidents.bulk_sql import chunks


def _lookup(column: Any, customer_id: Any) -> sa.ScalarSelect[Any]:
    """``column`` of the customer's feeder/transformer, correlated to ``customer_id``."""
    c, t, d, f = topo.customers, topo.transformers, topo.devices, topo.feeders
    return (
        sa.select(column)
        .select_from(
            c.join(t, t.c.id == c.c.transformer)
            .join(d, d.c.id == t.c.device)
            .join(f, f.c.id == d.c.feeder)
        )
        .where(c.c.id == customer_id)
        .scalar_subquery()
    )


def _fill(where: sa.ColumnElement[bool]) -> sa.Update:
    i, t, f = orm.interruptions, topo.transformers, topo.feeders
    return (
        sa.update(i)
        .where(where, i.c.feeder_id.is_(None))
        .values(
            feeder_id=_lookup(f.c.id, i.c.customer_id),
            substation=_lookup(f.c.substation, i.c.customer_id),
            # A transformer's own area overrides its feeder's (DESIGN section 2).
            area=_lookup(sa.func.coalesce(t.c.area, f.c.area), i.c.customer_id),
        )
        .execution_options(synchronize_session=False)
    )


# Databases known to hold the topology schema. The incidents schema can be migrated on
# its own (some tests do); then there is nothing to stamp from. Only "present" is cached.
_WITH_TOPOLOGY: set[str] = set()


async def _has_topology(session: AsyncSession) -> bool:
    bind = session.get_bind()
    engine = bind if isinstance(bind, sa.Engine) else bind.engine
    url = engine.url.render_as_string(hide_password=True)
    if url in _WITH_TOPOLOGY:
        return True
    conn = await session.connection()
    present = await conn.run_sync(
        lambda sync: sa.inspect(sync).has_table(topo.customers.name, schema="topology")
    )
    if present:
        _WITH_TOPOLOGY.add(url)
    return bool(present)


# PostgreSQL: the groups of a batch's new rows written by the insert itself (one statement,
# see bulk_sql), never NULL first and stamped after: a closed row inserted without groups
# was first counted in the roll-ups' ('', '', '') row that every writer shared, then moved.
GROUPS_OF = """LEFT JOIN LATERAL (
  SELECT gf.id AS feeder_id, gf.substation AS substation, coalesce(gt.area, gf.area) AS area
  FROM topology.customers gc JOIN topology.transformers gt ON gt.id = gc.transformer
  JOIN topology.devices gd ON gd.id = gt.device JOIN topology.feeders gf ON gf.id = gd.feeder
  WHERE gc.id = u.customer_id) g ON true"""
# as stamp_groups: a row that already has its groups keeps them
KEEP_GROUPS = {k: f"CASE WHEN t.feeder_id IS NULL THEN excluded.{k} ELSE t.{k} END"
               for k in ("feeder_id", "substation", "area")}  # fmt: skip


def groups_of(topology: Topology, customer_id: str) -> tuple[str | None, str | None, str | None]:
    """(feeder, substation, area) of the customer in ``topology``; all None when it or its
    path is missing (as the SQL lookup leaves such rows NULL)."""
    c = topology.customers.get(customer_id)
    t = topology.transformers.get(c.transformer) if c is not None else None
    d = topology.devices.get(t.device) if t is not None else None
    f = topology.feeders.get(d.feeder) if d is not None else None
    if t is None or f is None:
        return None, None, None
    return f.id, f.substation, t.area or f.area  # a transformer's own area overrides


async def upsert_interruptions(
    session: AsyncSession,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    updated: Sequence[str],
    *,
    stamp: bool,
    topology: Topology | None = None,
) -> None:
    """PostgreSQL: upsert interruption ``rows`` (tuples of ``columns``) in one statement,
    setting ``updated`` on a conflict; ``stamp``: the rows are new to their incident and get
    their groups as :func:`stamp_groups` would give them, from ``topology`` (the one the
    process holds, loaded from the database) or else from the stored topology."""
    from services.incidents.bulk_sql import (
        insert_rows,
        qualified,
        quote,
        rows_param,
        rows_source,
        select_list,
    )

    t = orm.interruptions
    if not rows:
        return
    if stamp and topology is not None:
        # Looked up here, not joined in SQL: the join read the whole customer table per
        # statement once a batch was large enough for a hash join. A customer the process's
        # topology lacks (not loaded yet, or just added) sends the batch the SQL way.
        cid = columns.index("customer_id")
        grouped = [(*r, *groups_of(topology, r[cid])) for r in rows]
        if all(g[-3] is not None for g in grouped):
            update = {c: f"excluded.{quote(c)}" for c in updated} | KEEP_GROUPS
            await insert_rows(session, t, (*columns, *KEEP_GROUPS), grouped,
                              conflict=("incident_id", "customer_id"), update=update)  # fmt: skip
            return
    if not stamp or not await _has_topology(session):
        await insert_rows(session, t, columns, rows, conflict=("incident_id", "customer_id"),
                          update=updated)  # fmt: skip
        return
    names = ", ".join(quote(c) for c in (*columns, *KEEP_GROUPS))
    sets = [f"{quote(c)} = excluded.{quote(c)}" for c in updated]
    sets += [f"{k} = {expr}" for k, expr in KEEP_GROUPS.items()]
    sql = (  # constant text and table metadata only
        f"INSERT INTO {qualified(t)} AS t ({names}) "  # noqa: S608
        f"SELECT {select_list(columns)}, g.feeder_id, g.substation, g.area "
        f"FROM {rows_source(t)} {GROUPS_OF} "
        f"ON CONFLICT (incident_id, customer_id) DO UPDATE SET {', '.join(sets)}"
    )
    await session.execute(sa.text(sql), rows_param(columns, rows))


async def stamp_groups(session: AsyncSession, incident_id: str, customers: Sequence[str]) -> None:
    """Fill the groups of the incident's rows for ``customers`` that have none yet."""
    if not await _has_topology(session):
        return
    i = orm.interruptions
    for part in chunks(sorted(customers)):
        await session.execute(
            _fill(sa.and_(i.c.incident_id == incident_id, i.c.customer_id.in_(part)))
        )


async def stamp_all_missing(session: AsyncSession) -> None:
    """Fill the groups of every row that has none (rows written by bulk loaders)."""
    await session.execute(_fill(sa.true()))
