"""SLA report inputs read from the incidents schema (DESIGN sections 7 and 11).

Scored incidents: outage and voltage incidents detected in the period, except those that
end up not being incidents of their own (``momentary``, ``merged``, ``cancelled``), plus the
planned outages scheduled to start in the period (not cancelled). The first customer notice
of a nested incident may have been sent under its parent (nobody is told twice), so the
parent's notices count for it too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology import orm as topo
from services.incidents.orm import incidents, planned_outages
from services.incidents.quality_orm import first_notices
from services.incidents.report_interruptions import I, load_interruptions
from services.incidents.report_sql import ts, utc
from services.incidents.reports.records import IncidentSlaRecord, InterruptionRecord, Period

NOT_SCORED = ("momentary", "merged", "cancelled")
PLANNED_NOTICE_STAGE = "planned_notice"


def _opt(value: Any) -> datetime | None:
    return None if value is None else utc(value)


async def load_incident_sla(session: AsyncSession, period: Period) -> list[IncidentSlaRecord]:
    """Outage and voltage incidents detected in the period, with their first notice."""
    i, fn = incidents, first_notices
    first_notice = (
        sa.select(sa.func.min(fn.c.sent_at))
        .where(
            fn.c.incident_id.in_([i.c.id, sa.func.coalesce(i.c.parent_incident_id, i.c.id)]),
            fn.c.stage != PLANNED_NOTICE_STAGE,
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        sa.select(i, first_notice.label("first_notice_at"))
        .where(
            i.c.detected_at >= ts(period.start),
            i.c.detected_at < ts(period.end),
            i.c.kind.in_(("outage", "voltage")),
            i.c.status.not_in(NOT_SCORED),
        )
        .order_by(i.c.detected_at, i.c.id)
    )
    return [
        IncidentSlaRecord(
            incident_id=r.id,
            area=r.area,
            kind=r.kind,
            detected_at=utc(r.detected_at),
            acknowledged_at=_opt(r.acknowledged_at),
            arrived_at=_opt(r.arrived_at),
            restored_at=_opt(r.restored_at),
            first_notice_at=_opt(r.first_notice_at),
            feeder_id=r.feeder_id,
        )
        for r in rows
    ]


async def load_planned_sla(session: AsyncSession, period: Period) -> list[IncidentSlaRecord]:
    """Planned outages scheduled to start in the period, with their first notice."""
    p, fn, f = planned_outages, first_notices, topo.feeders
    notice = (
        sa.select(sa.func.min(fn.c.sent_at))
        .where(
            fn.c.incident_id.in_([p.c.id, sa.func.coalesce(p.c.incident_id, p.c.id)]),
            fn.c.stage == PLANNED_NOTICE_STAGE,
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        sa.select(p, f.c.area.label("feeder_area"), notice.label("notice_at"))
        .select_from(p.outerjoin(f, f.c.id == p.c.feeder_id))
        .where(
            p.c.starts_at >= ts(period.start),
            p.c.starts_at < ts(period.end),
            p.c.status != "cancelled",
        )
        .order_by(p.c.starts_at, p.c.id)
    )
    return [
        IncidentSlaRecord(
            incident_id=r.incident_id or r.id,
            area=r.feeder_area or "urban",
            kind="planned",
            detected_at=utc(r.starts_at),
            scheduled_start=utc(r.starts_at),
            planned_notice_at=_opt(r.notice_at),
            temporary=r.kind == "temporary",
            feeder_id=r.feeder_id,
        )
        for r in rows
    ]


async def load_sla_inputs(
    session: AsyncSession, period: Period
) -> tuple[list[IncidentSlaRecord], list[InterruptionRecord]]:
    """Scored incidents and the unplanned interruptions starting in the period."""
    records = await load_incident_sla(session, period) + await load_planned_sla(session, period)
    started_inside = sa.and_(
        I.c.start >= ts(period.start), I.c.start < ts(period.end), sa.not_(I.c.planned)
    )
    interrupted = await load_interruptions(session, period, started_inside)
    unknown = sorted({r.incident_id for r in interrupted if not r.area})
    if not unknown:
        return records, interrupted
    # A customer gone from the topology since: judge them by their incident's area.
    rows = await session.execute(
        sa.select(incidents.c.id, incidents.c.area).where(incidents.c.id.in_(unknown))
    )
    areas = {iid: area for iid, area in rows}
    return records, [
        r if r.area else replace(r, area=areas.get(r.incident_id, "urban")) for r in interrupted
    ]
