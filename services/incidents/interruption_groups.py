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
from services.incidents import orm

CHUNK = 500  # ids per IN (...) list; keeps SQLite under its bound-parameter limit


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


async def stamp_groups(session: AsyncSession, incident_id: str, customers: Sequence[str]) -> None:
    """Fill the groups of the incident's rows for ``customers`` that have none yet."""
    if not await _has_topology(session):
        return
    i = orm.interruptions
    ordered = sorted(customers)
    for k in range(0, len(ordered), CHUNK):
        part = ordered[k : k + CHUNK]
        await session.execute(
            _fill(sa.and_(i.c.incident_id == incident_id, i.c.customer_id.in_(part)))
        )


async def stamp_all_missing(session: AsyncSession) -> None:
    """Fill the groups of every row that has none (rows written by bulk loaders)."""
    await session.execute(_fill(sa.true()))
