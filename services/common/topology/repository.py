"""Store and read the topology in schema ``topology`` (PostgreSQL or SQLite).

``store_topology`` runs inside the caller's transaction (the unit of work commits), so a
load is all or nothing: upsert every row present, delete every row absent, bump the version.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology.model import (
    Contacts,
    Customer,
    Device,
    Feeder,
    Topology,
    Transformer,
)
from services.common.topology.orm import customers, devices, feeders, meta, transformers

META_ID = 1
DELETE_CHUNK = 5000


def _rows(topo: Topology) -> dict[sa.Table, list[dict[str, Any]]]:
    return {
        feeders: [
            {"id": f.id, "name": f.name, "substation": f.substation, "area": f.area}
            for f in topo.feeders.values()
        ],
        devices: [
            {"id": d.id, "feeder": d.feeder, "parent": d.parent, "kind": d.kind}
            for d in topo.devices.values()
        ],
        transformers: [
            {
                "id": t.id,
                "device": t.device,
                "nominal_v": t.nominal_v,
                "phases": t.phases,
                "area": t.area,
            }
            for t in topo.transformers.values()
        ],
        customers: [
            {
                "id": c.id,
                "meter": c.meter,
                "transformer": c.transformer,
                "class": c.class_,
                "critical": c.critical,
                "member": c.member,
                "language": c.language,
                "quiet_hours": c.quiet_hours,
                "sms": c.contacts.sms,
                "email": c.contacts.email,
                "wechat": c.contacts.wechat,
                "webhook": c.contacts.webhook,
            }
            for c in topo.customers.values()
        ],
    }


def _upsert(dialect: str, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT (id) DO UPDATE, writing only rows that actually changed."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    columns = [c for c in table.columns if not c.primary_key]
    changed = sa.or_(*(c.is_distinct_from(stmt.excluded[c.name]) for c in columns))
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={c.name: stmt.excluded[c.name] for c in columns},
        where=changed,
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _current_version(session: AsyncSession, lock: bool) -> int:
    query = sa.select(meta.c.version).where(meta.c.id == META_ID)
    if lock:
        query = query.with_for_update()  # serialises concurrent loads on PostgreSQL
    version = (await session.execute(query)).scalar_one_or_none()
    return version or 0


async def store_topology(
    session: AsyncSession, topo: Topology, *, loaded_at: datetime | None = None
) -> int:
    """Upsert ``topo`` (rows absent from it are deleted) and bump the version.

    Runs in the caller's transaction; the caller commits. Sets ``topo.version`` and
    returns the new version.
    """
    dialect = session.get_bind().dialect.name
    version = await _current_version(session, lock=dialect == "postgresql") + 1
    for table, rows in _rows(topo).items():
        present = {row["id"] for row in rows}
        existing = (await session.execute(sa.select(table.c.id))).scalars().all()
        absent = [row_id for row_id in existing if row_id not in present]
        for chunk in _chunks(absent, DELETE_CHUNK):
            await session.execute(sa.delete(table).where(table.c.id.in_(chunk)))
        if rows:
            await session.execute(_upsert(dialect, table), rows)
    at = loaded_at or datetime.now(UTC)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(meta).values(id=META_ID, version=version, loaded_at=at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[meta.c.id], set_={"version": version, "loaded_at": at}
        )
    )
    topo.version = version
    return version


async def topology_version(session: AsyncSession) -> int:
    """The stored version; 0 when nothing was ever loaded."""
    return await _current_version(session, lock=False)


async def load_topology(session: AsyncSession) -> Topology:
    """The stored topology with its version (empty, version 0, when nothing was loaded)."""
    version = await topology_version(session)
    f_rows = (await session.execute(sa.select(feeders))).all()
    d_rows = (await session.execute(sa.select(devices))).all()
    t_rows = (await session.execute(sa.select(transformers))).all()
    c_rows = (await session.execute(sa.select(customers))).all()
    return Topology.build(
        feeders=(Feeder(r.id, r.name, r.substation, r.area) for r in f_rows),
        devices=(Device(r.id, r.feeder, r.parent, r.kind) for r in d_rows),
        transformers=(Transformer(r.id, r.device, r.nominal_v, r.phases, r.area) for r in t_rows),
        customers=_customers(c_rows),
        version=version,
    )


def _customers(rows: Iterable[sa.Row[Any]]) -> Iterator[Customer]:
    for r in rows:
        m = r._mapping
        yield Customer(
            m["id"],
            m["meter"],
            m["transformer"],
            m["class"],
            m["critical"],
            m["member"],
            m["language"],
            m["quiet_hours"],
            Contacts(m["sms"], m["email"], m["wechat"], m["webhook"]),
        )
