"""Planned outages (DESIGN section 6: ``scheduled`` → ``in_progress`` → ``completed``).

A planned outage is a row of ``planned_outages`` plus an incident of kind ``planned`` with
the same id. Scheduling announces the affected customers (``planned_scheduled`` lists them
in ``customers_added``, for the 7-day and 1-day notices) without opening interruptions, so
nobody looks "out" before the work starts; starting opens them, completing ends them. The
correlator never holds planned incidents (it loads outages only), so they are saved the way
:mod:`services.incidents.actions` saves incidents it does not hold: under the feeder lock
through :func:`services.incidents.handlers.finish`, events to the outbox, one audit row each.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import UnitOfWork
from services.common.topology.model import Topology
from services.incidents import orm
from services.incidents.audit_log import record_audit
from services.incidents.domain import lifecycle
from services.incidents.domain.model import Incident, Interruption
from services.incidents.errors import InvalidRequest, InvalidTransition, NotFound
from services.incidents.handlers import HandlerContext, finish
from services.incidents.state_store import IncidentMeta, load_incidents

t = orm.planned_outages


@dataclass(frozen=True, slots=True)
class PlannedOutage:
    id: str
    kind: str
    status: str
    feeder_id: str
    device_id: str | None
    transformer_id: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    incident_id: str | None
    created_by: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _row(r: Any) -> PlannedOutage:
    values = dict(r._mapping)
    for key in ("starts_at", "ends_at", "created_at"):
        values[key] = _utc(values[key])
    return PlannedOutage(**values)


async def list_planned(
    session: AsyncSession, *, after: str | None, limit: int, status: str | None = None
) -> list[PlannedOutage]:
    """Planned outages by id after ``after``."""
    stmt = sa.select(t).order_by(t.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(t.c.id > after)
    if status is not None:
        stmt = stmt.where(t.c.status == status)
    return [_row(r) for r in await session.execute(stmt)]


async def get_planned(session: AsyncSession, planned_id: str) -> PlannedOutage | None:
    row = (await session.execute(sa.select(t).where(t.c.id == planned_id))).first()
    return None if row is None else _row(row)


def affected_customers(
    topo: Topology, feeder_id: str, device_id: str | None, transformer_id: str | None
) -> tuple[list[str], str]:
    """The customers a planned outage cuts off, and its area; InvalidRequest when the
    feeder, device or transformer is unknown or on another feeder."""
    if feeder_id not in topo.feeders:
        raise InvalidRequest(f"unknown feeder {feeder_id!r}")
    area = topo.feeders[feeder_id].area
    if transformer_id is not None:
        tx = topo.transformers.get(transformer_id)
        if tx is None or topo.feeder_of_device(tx.device) != feeder_id:
            raise InvalidRequest(f"transformer {transformer_id!r} is not on feeder {feeder_id}")
        return sorted(topo.customers_by_transformer[transformer_id]), topo.area_of_transformer(
            transformer_id
        )
    device = device_id or topo.feeder_head[feeder_id]
    if device not in topo.devices or topo.feeder_of_device(device) != feeder_id:
        raise InvalidRequest(f"device {device!r} is not on feeder {feeder_id}")
    return sorted(topo.customers_below(device)), area


async def _save(
    uow: UnitOfWork, ctx: HandlerContext, inc: Incident, meta: IncidentMeta, now: datetime
) -> None:
    cache = ctx.cache
    async with cache.lock:
        cache.begin()
        await cache.acquire(uow.session, {inc.feeder_id})
        cache.metas[inc.id] = meta
        try:
            await finish(uow, ctx, inc.drain_events(), now, [inc])
        finally:
            cache.metas.pop(inc.id, None)


async def schedule_planned(
    uow: UnitOfWork,
    ctx: HandlerContext,
    *,
    kind: str,
    feeder_id: str,
    device_id: str | None,
    transformer_id: str | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: str,
) -> PlannedOutage:
    """Record a planned outage and its ``scheduled`` incident (``planned_scheduled``)."""
    if ends_at <= starts_at:
        raise InvalidRequest("ends_at must be after starts_at")
    customers, area = affected_customers(ctx.cache.topology, feeder_id, device_id, transformer_id)
    now = ctx.clock.now()
    planned_id = f"PLN-{uuid.uuid4().hex[:12].upper()}"
    inc = Incident(
        id=planned_id, kind="planned", status="scheduled", feeder_id=feeder_id, area=area,
        detected_at=starts_at, device_id=device_id, transformer_id=transformer_id,
        etr=ends_at,
    )  # fmt: skip
    inc.customers_affected.update(customers)
    inc.record("planned_scheduled", now, actor, reason, added=customers)
    planned = PlannedOutage(
        id=planned_id, kind=kind, status="scheduled", feeder_id=feeder_id, device_id=device_id,
        transformer_id=transformer_id, starts_at=starts_at, ends_at=ends_at, reason=reason,
        incident_id=planned_id, created_by=actor, created_at=now,
    )  # fmt: skip
    await uow.session.execute(sa.insert(t).values(**planned.as_dict()))
    await _save(uow, ctx, inc, IncidentMeta(), now)
    await record_audit(
        uow.session, actor=actor, action="planned.create", before=None,
        after=planned.as_dict(), at=now, incident_id=planned_id,
    )  # fmt: skip
    return planned


async def advance_planned(
    uow: UnitOfWork, ctx: HandlerContext, planned_id: str, to: str, actor: str
) -> PlannedOutage:
    """``in_progress`` (interruptions open now), ``completed`` (they end now) or
    ``cancelled``; NotFound / InvalidTransition (with the allowed statuses) otherwise."""
    session = uow.session
    stmt = sa.select(t).where(t.c.id == planned_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"planned outage {planned_id} not found")
    before = _row(row)
    incs, metas = await load_incidents(session, orm.incidents.c.id == before.incident_id)
    inc = incs.get(str(before.incident_id))
    if inc is None:
        raise NotFound(f"incident of planned outage {planned_id} not found")
    now = ctx.clock.now()
    try:
        lifecycle.check(inc, to)
    except lifecycle.InvalidTransition as exc:
        raise InvalidTransition(str(exc), exc.current, exc.allowed) from exc
    if to == "in_progress":
        customers = sorted(inc.customers_affected)
        for c in customers:
            inc.add_interruption(Interruption(c, now, "operator"))
        lifecycle.transition(inc, to, now, actor, "planned work started", added=customers)
    elif to == "completed":
        ended = [c for c in list(inc.interruptions) if inc.end_interruption(c, now, "operator")]
        inc.restored_at = now
        lifecycle.transition(inc, to, now, actor, "planned work completed", restored=ended)
    else:
        inc.closed_at = now
        lifecycle.transition(inc, to, now, actor, "planned outage cancelled")
    await session.execute(sa.update(t).where(t.c.id == planned_id).values(status=to))
    await _save(uow, ctx, inc, metas[inc.id], now)
    after = await get_planned(session, planned_id)
    assert after is not None
    await record_audit(
        session, actor=actor, action=f"planned.{to}", before=before.as_dict(),
        after=after.as_dict(), at=now, incident_id=inc.id,
    )  # fmt: skip
    return after
