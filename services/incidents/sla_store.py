"""The SLA clock's durable deadlines (DESIGN section 7): rows of ``sla_deadlines``.

Every query on that table lives here. The rules are in
:mod:`services.incidents.domain.sla_clock`; :mod:`services.incidents.sla_scheduler` wires
them to incidents.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents import orm
from services.incidents.bulk_sql import chunks
from services.incidents.domain.sla_clock import DeadlineRow, Target, TargetState
from services.incidents.quality_orm import sla_deadlines, sla_refresh_owed
from services.incidents.state_store import upsert, utc

_FLAGS = ("at_risk_emitted", "breached_emitted")


def _row(r: Any) -> DeadlineRow:
    return DeadlineRow(
        incident_id=r.incident_id, target=r.target, at_risk_at=utc(r.at_risk_at) or r.at_risk_at,
        due_at=utc(r.due_at) or r.due_at, at_risk_emitted=r.at_risk_emitted,
        breached_emitted=r.breached_emitted, completed=r.completed,
    )  # fmt: skip


_TIMES = ("started_at", "at_risk_at", "due_at", "completed_at")


@dataclass(frozen=True, slots=True)
class StoredDeadlines:
    """Deadline rows as stored: ``rows`` (incident → target → row) and every column's stored
    value by ``(incident, target)``, so a save writes only the rows that changed."""

    rows: dict[str, dict[Target, DeadlineRow]] = field(default_factory=dict)
    values: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


async def load_rows_many(session: AsyncSession, incident_ids: Sequence[str]) -> StoredDeadlines:
    """The stored deadlines of several incidents."""
    t = sla_deadlines
    out = StoredDeadlines()
    for part in chunks(sorted(set(incident_ids))):
        for r in await session.execute(sa.select(t).where(t.c.incident_id.in_(part))):
            out.rows.setdefault(r.incident_id, {})[r.target] = _row(r)
            values = dict(r._mapping)
            for k in _TIMES:
                values[k] = utc(values[k])
            for k in (*_FLAGS, "completed"):
                values[k] = bool(values[k])
            out.values[(r.incident_id, r.target)] = values
    return out


async def save_rows_many(
    session: AsyncSession,
    batches: Sequence[tuple[str, Sequence[DeadlineRow], dict[Target, TargetState]]],
    stored: StoredDeadlines | None = None,
) -> None:
    """Upsert the deadline rows of several incidents ``(area, rows, states)`` with their
    evaluated state (status ``dropped`` when a target no longer applies), in one statement;
    rows equal to their ``stored`` values are left alone (most refreshes change none: fewer
    writes, and the timer run sees its deadlines unchanged)."""
    values = []
    known = stored.values if stored is not None else {}
    for area, rows, states in batches:
        for row in rows:
            st = states.get(row.target)
            value = {
                "incident_id": row.incident_id,
                "target": row.target,
                "area": area,
                "started_at": st.started_at if st else row.at_risk_at,
                "at_risk_at": row.at_risk_at,
                "due_at": row.due_at,
                "completed_at": st.completed_at if st else None,
                "status": st.status if st else "dropped",
                "at_risk_emitted": row.at_risk_emitted,
                "breached_emitted": row.breached_emitted,
                "completed": row.completed,
            }  # fmt: skip
            if known.get((row.incident_id, row.target)) != value:
                values.append(value)
    if not values:
        return
    stmt = upsert(session, sla_deadlines)
    keep = ("incident_id", "target")
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=list(keep),
            set_={k: stmt.excluded[k] for k in values[0] if k not in keep},
        ),
        values,
    )


def _foreign_incidents(partitions: Collection[int]) -> sa.Select[tuple[str]]:
    """Incidents on a feeder known to arrive on a partition outside ``partitions``: another
    consumer's. Saving one would make that consumer reload the whole feeder."""
    i, f = orm.incidents, orm.feeder_versions
    foreign = sa.select(f.c.feeder_id).where(
        f.c.partition.is_not(None), f.c.partition.not_in(sorted(partitions))
    )
    return sa.select(i.c.id).where(i.c.feeder_id.in_(foreign))


def _not_foreign(partitions: Collection[int] | None) -> sa.ColumnElement[bool]:
    """Deadline rows of incidents that are not another consumer's (None: every row)."""
    if partitions is None:
        return sa.true()
    return sla_deadlines.c.incident_id.not_in(_foreign_incidents(partitions))


async def foreign_incidents(
    session: AsyncSession, ids: Sequence[str], partitions: Collection[int] | None
) -> set[str]:
    """The incidents among ``ids`` that belong to another consumer (none when the
    partitions held are not known)."""
    if partitions is None or not ids:
        return set()
    found: set[str] = set()
    for part in chunks(sorted(ids)):
        stmt = _foreign_incidents(partitions).where(orm.incidents.c.id.in_(part))
        found.update(r.id for r in await session.execute(stmt))
    return found


# --- SLA refreshes owed to another consumer -----------------------------------------------
async def owe_refresh(session: AsyncSession, ids: Sequence[str], now: datetime) -> None:
    """Leave the refresh of these incidents' SLA to their feeders' owner."""
    t = sla_refresh_owed
    for part in chunks(sorted(ids)):
        await session.execute(
            upsert(session, t).on_conflict_do_nothing(index_elements=["incident_id"]),
            [{"incident_id": i, "owed_at": now} for i in part],
        )


def _owed_of(partitions: Collection[int] | None) -> sa.Select[tuple[str]]:
    """Owed refreshes not of another consumer: of incidents on a feeder on ``partitions``
    or on no known partition (all of them when ``partitions`` is None). Joined row by row,
    so the cost follows the few owed rows, not every incident ever stored."""
    t, i, f = sla_refresh_owed, orm.incidents, orm.feeder_versions
    stmt = sa.select(t.c.incident_id).select_from(
        t.outerjoin(i, i.c.id == t.c.incident_id).outerjoin(f, f.c.feeder_id == i.c.feeder_id)
    )
    if partitions is not None:
        stmt = stmt.where(sa.or_(f.c.partition.is_(None), f.c.partition.in_(sorted(partitions))))
    return stmt


async def owed_refreshes(session: AsyncSession, partitions: Collection[int] | None) -> list[str]:
    """Incidents owed a refresh that are not another consumer's (locked, skipping rows
    another process holds)."""
    t = sla_refresh_owed
    stmt = _owed_of(partitions).order_by(t.c.incident_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=t)
    return [r.incident_id for r in await session.execute(stmt)]


async def settle_refreshes(session: AsyncSession, ids: Sequence[str]) -> None:
    """The refreshes of these incidents are done."""
    t = sla_refresh_owed
    for part in chunks(sorted(ids)):
        await session.execute(sa.delete(t).where(t.c.incident_id.in_(part)))


async def earliest_owed(
    session: AsyncSession, partitions: Collection[int] | None
) -> datetime | None:
    """When the oldest refresh :func:`owed_refreshes` would pick was owed."""
    t = sla_refresh_owed
    stmt = sa.select(sa.func.min(t.c.owed_at)).where(t.c.incident_id.in_(_owed_of(partitions)))
    return utc((await session.execute(stmt)).scalar())


async def due_rows(
    session: AsyncSession, now: datetime, partitions: Collection[int] | None = None
) -> list[DeadlineRow]:
    """Rows owing an event at ``now`` (locked, skipping rows another process holds), of
    incidents on ``partitions`` or on no known partition."""
    t = sla_deadlines
    stmt = (
        sa.select(t)
        .where(~t.c.completed, _not_foreign(partitions))
        .where(
            sa.or_(
                sa.and_(~t.c.at_risk_emitted, t.c.at_risk_at <= now),
                sa.and_(~t.c.breached_emitted, t.c.due_at <= now),
            )
        )
        .order_by(t.c.incident_id, t.c.target)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [_row(r) for r in await session.execute(stmt)]


async def set_flags(session: AsyncSession, row: DeadlineRow) -> None:
    """Store a row's emitted flags (with the lifecycle event, in one transaction)."""
    t = sla_deadlines
    await session.execute(
        sa.update(t)
        .where(t.c.incident_id == row.incident_id, t.c.target == row.target)
        .values(at_risk_emitted=row.at_risk_emitted, breached_emitted=row.breached_emitted)
    )


async def next_pending(
    session: AsyncSession, partitions: Collection[int] | None = None
) -> datetime | None:
    """The earliest instant at which some row (as :func:`due_rows` picks them) will owe an
    event."""
    t = sla_deadlines
    row = (
        await session.execute(
            sa.select(
                sa.func.min(sa.case((~t.c.at_risk_emitted, t.c.at_risk_at))),
                sa.func.min(sa.case((~t.c.breached_emitted, t.c.due_at))),
            ).where(~t.c.completed, _not_foreign(partitions))
        )
    ).one()
    found = [v for v in (utc(row[0]), utc(row[1])) if v is not None]
    return min(found, default=None)
