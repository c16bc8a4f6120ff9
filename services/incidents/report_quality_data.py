"""Voltage and satisfaction report inputs read from the incidents schema.

Voltage: the daily roll-ups ``voltage_minutes`` and ``power_quality_counts`` are summed per
meter in SQL over the local days the period touches (days are the roll-ups' grain, so a
period that starts or ends inside a day counts that whole day).

Satisfaction: outage incidents detected in the period that became incidents of their own
(not momentary, merged or cancelled); their customers' impacts summed per incident in SQL;
first notices per affected customer of a top-level incident (a nested incident's customers
were told under their parent); the ETR in force at restoration against the restoration
time; survey answers about those incidents; the latest calibration's R².
"""

from __future__ import annotations

from datetime import timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology import orm as topo
from services.incidents.domain.impact import COMPONENTS
from services.incidents.orm import etr_history, incident_customers, incidents
from services.incidents.quality_orm import (
    calibrations,
    customer_impacts,
    first_notices,
    power_quality_counts,
    surveys,
    voltage_minutes,
)
from services.incidents.report_sql import Dialect, ts, utc
from services.incidents.reports.major_event_days import local_day
from services.incidents.reports.records import (
    EtrErrorRecord,
    FirstNoticeRecord,
    IncidentImpactRecord,
    Period,
    SagSwellCount,
    SurveyRecord,
    VoltageMinutes,
)

NOT_OWN_INCIDENT = ("momentary", "merged", "cancelled")


def _days(period: Period, tz: tzinfo) -> tuple[Any, Any]:
    return local_day(period.start, tz), local_day(period.end - timedelta(microseconds=1), tz)


async def load_voltage_inputs(
    session: AsyncSession, period: Period, tz: tzinfo
) -> tuple[list[VoltageMinutes], list[SagSwellCount]]:
    """Per-meter monitored / out-of-band minutes and sag/swell counts per class."""
    first, last = _days(period, tz)
    vm, pq, f = voltage_minutes, power_quality_counts, topo.feeders
    minutes = await session.execute(
        sa.select(
            vm.c.meter_id, vm.c.transformer_id, vm.c.feeder_id, vm.c.area, f.c.substation,
            sa.func.sum(vm.c.minutes_monitored).label("monitored"),
            sa.func.sum(vm.c.minutes_out_of_band).label("out"),
        )
        .select_from(vm.outerjoin(f, f.c.id == vm.c.feeder_id))
        .where(vm.c.day >= first, vm.c.day <= last)
        .group_by(vm.c.meter_id, vm.c.transformer_id, vm.c.feeder_id, vm.c.area, f.c.substation)
        .order_by(vm.c.meter_id, vm.c.transformer_id)
    )
    counts = await session.execute(
        sa.select(
            pq.c.meter_id, pq.c.transformer_id, pq.c.feeder_id, pq.c.area, pq.c.kind,
            pq.c.category, f.c.substation, sa.func.sum(pq.c.count).label("n"),
        )
        .select_from(pq.outerjoin(f, f.c.id == pq.c.feeder_id))
        .where(pq.c.day >= first, pq.c.day <= last)
        .group_by(
            pq.c.meter_id, pq.c.transformer_id, pq.c.feeder_id, pq.c.area, pq.c.kind,
            pq.c.category, f.c.substation,
        )
        .order_by(pq.c.meter_id, pq.c.kind, pq.c.category)
    )
    return (
        [
            VoltageMinutes(r.meter_id, r.transformer_id, r.feeder_id, r.area,
                           float(r.monitored), float(r.out), r.substation)
            for r in minutes
        ],
        [
            SagSwellCount(r.meter_id, r.transformer_id, r.feeder_id, r.area,
                          "sag" if r.kind == "sag" else "swell", r.category, int(r.n),
                          r.substation)
            for r in counts
        ],
    )  # fmt: skip


def _chosen(period: Period) -> sa.Select[Any]:
    i = incidents
    return sa.select(i.c.id).where(
        i.c.kind == "outage",
        i.c.detected_at >= ts(period.start),
        i.c.detected_at < ts(period.end),
        i.c.status.not_in(NOT_OWN_INCIDENT),
    )


async def load_impacts(session: AsyncSession, period: Period) -> list[IncidentImpactRecord]:
    """Σ impact and Σ per component of each chosen incident's customers."""
    i, ci = incidents, customer_impacts
    sums = (
        sa.select(
            ci.c.incident_id,
            sa.func.sum(ci.c.impact).label("total"),
            *(sa.func.sum(ci.c.components[name].as_float()).label(f"c_{name}")
              for name in COMPONENTS),
        )
        .where(ci.c.incident_id.in_(_chosen(period)))
        .group_by(ci.c.incident_id)
        .subquery("sums")
    )  # fmt: skip
    rows = await session.execute(
        sa.select(i.c.id, i.c.area, i.c.feeder_id, i.c.detected_at, i.c.customers_affected,
                  i.c.customer_minutes, sums)
        .select_from(i.outerjoin(sums, sums.c.incident_id == i.c.id))
        .where(i.c.id.in_(_chosen(period)))
        .order_by(i.c.detected_at, i.c.id)
    )  # fmt: skip
    return [
        IncidentImpactRecord(
            incident_id=r.id,
            area=r.area,
            detected_at=utc(r.detected_at),
            impact_total=float(r.total or 0.0),
            customers_affected=int(r.customers_affected),
            customer_minutes=float(r.customer_minutes),
            components={n: float(getattr(r, f"c_{n}") or 0.0) for n in COMPONENTS},
            feeder_id=r.feeder_id,
        )
        for r in rows
    ]


async def load_first_notices(session: AsyncSession, period: Period) -> list[FirstNoticeRecord]:
    """Detection → first message minutes per customer of each chosen top-level incident."""
    i, ic, fn = incidents, incident_customers, first_notices
    owner = incidents.alias("owner")
    sent = (
        sa.select(sa.func.min(fn.c.sent_at))
        .select_from(fn.join(owner, owner.c.id == fn.c.incident_id))
        .where(
            fn.c.customer_id == ic.c.customer_id,
            sa.func.coalesce(owner.c.parent_incident_id, owner.c.id) == i.c.id,
        )
        .scalar_subquery()
    )
    dialect = Dialect.of(session)
    rows = await session.execute(
        sa.select(ic.c.incident_id, ic.c.customer_id, dialect.minutes(i.c.detected_at, sent))
        .select_from(ic.join(i, i.c.id == ic.c.incident_id))
        .where(i.c.id.in_(_chosen(period)), i.c.parent_incident_id.is_(None))
        .order_by(ic.c.incident_id, ic.c.customer_id)
    )
    return [
        FirstNoticeRecord(iid, cid, None if delay is None else float(delay))
        for iid, cid, delay in rows
    ]


async def load_etr_errors(session: AsyncSession, period: Period) -> list[EtrErrorRecord]:
    """Restored − ETR in force at restoration (minutes) per chosen restored incident."""
    i, eh = incidents, etr_history
    in_force = (
        sa.select(eh.c.etr)
        .where(eh.c.incident_id == i.c.id, eh.c.at <= i.c.restored_at)
        .order_by(eh.c.n.desc())
        .limit(1)
        .scalar_subquery()
    )
    dialect = Dialect.of(session)
    rows = await session.execute(
        sa.select(i.c.id, i.c.cause, dialect.minutes(in_force, i.c.restored_at).label("err"))
        .where(i.c.id.in_(_chosen(period)), i.c.restored_at.is_not(None))
        .order_by(i.c.detected_at, i.c.id)
    )
    return [EtrErrorRecord(r.id, float(r.err), r.cause) for r in rows if r.err is not None]


async def load_surveys(session: AsyncSession, period: Period) -> list[SurveyRecord]:
    """Survey answers about the chosen incidents."""
    s = surveys
    rows = await session.execute(
        sa.select(s.c.incident_id, s.c.customer_id, s.c.score)
        .where(s.c.incident_id.in_(_chosen(period)))
        .order_by(s.c.occurred_at, s.c.event_id)
    )
    return [SurveyRecord(iid, cid, int(score)) for iid, cid, score in rows]


async def latest_calibration_r2(session: AsyncSession) -> float | None:
    """R² (after fitting) of the latest ``outagedesk impact calibrate`` run."""
    c = calibrations
    value = await session.scalar(
        sa.select(c.c.r2_after).order_by(c.c.at.desc(), c.c.id.desc()).limit(1)
    )
    return None if value is None else float(value)
