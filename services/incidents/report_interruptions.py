"""The interruption rows a reliability or SLA report reads, and their per-row measures in SQL.

The measures mirror ``services.incidents.reports.interruptions`` exactly (sustained > 5
minutes and not flagged momentary; an open interruption runs to ``as_of``; minutes clipped
to the period), so sums computed in the database equal the pure functions' sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.incidents.orm import interruptions
from services.incidents.report_sql import Dialect, as_date, customer_groups, ts, utc
from services.incidents.reports.interruptions import MOMENTARY_THRESHOLD_MIN
from services.incidents.reports.records import (
    CustomerRecord,
    InterruptionRecord,
    MomentaryEvent,
    Period,
)

I = interruptions  # noqa: E741 - the table, as in every query below
# A SQL literal (not a bound parameter) so the planner can match the partial index predicate.
FIVE_MINUTES = sa.literal_column("interval '5 minutes'", sa.Interval())


def overlapping(period: Period) -> ColumnElement[bool]:
    """Interruptions that overlap the period.

    Written as two index-friendly halves (started inside; started before and not ended
    before the start) so PostgreSQL can use the ``start`` and ``end`` indexes for a short
    period in a long history instead of scanning everything that started before its end.
    """
    ps, pe = ts(period.start), ts(period.end)
    return sa.or_(
        sa.and_(I.c.start >= ps, I.c.start < pe),
        sa.and_(I.c.start < ps, sa.or_(I.c.end.is_(None), I.c.end >= ps)),
    )


@dataclass(frozen=True, slots=True)
class Measures:
    """Per-row SQL expressions for one period (as_of = the period end)."""

    duration: ColumnElement[Any]
    sustained: ColumnElement[bool]
    momentary: ColumnElement[bool]
    inside: ColumnElement[bool]
    clipped: ColumnElement[Any]


def measures(dialect: Dialect, period: Period, as_of: datetime | None = None) -> Measures:
    """Duration, sustained/momentary verdicts, inside-the-period and clipped minutes."""
    ps, pe = ts(period.start), ts(period.end)
    end_as_of = sa.func.coalesce(I.c.end, dialect.greatest(ts(as_of or period.end), I.c.start))
    duration = dialect.minutes(I.c.start, end_as_of)
    sustained = sa.and_(sa.not_(I.c.momentary), duration > MOMENTARY_THRESHOLD_MIN)
    momentary = sa.or_(
        I.c.momentary, sa.and_(I.c.end.is_not(None), duration <= MOMENTARY_THRESHOLD_MIN)
    )
    lo = dialect.greatest(I.c.start, ps)
    hi = dialect.least(sa.func.coalesce(I.c.end, pe), pe)
    clipped = dialect.greatest(dialect.minutes(lo, hi), sa.literal(0.0))
    inside = sa.and_(I.c.start >= ps, I.c.start < pe)
    return Measures(duration, sustained, momentary, inside, clipped)


def momentary_row(dialect: Dialect, table: sa.FromClause = I) -> ColumnElement[bool]:
    """An unplanned momentary interruption (flagged, or closed within 5 minutes).

    On PostgreSQL it is written exactly as the predicate of the partial index
    ``ix_interruptions_momentary`` so the planner can use that index; the ``end − start ≤
    5 min`` form equals ``measures(...).momentary`` (NULL, so false, for open rows).
    """
    c = table.c
    if dialect.postgres:
        short = c.end - c.start <= FIVE_MINUTES
    else:
        short = sa.and_(
            c.end.is_not(None), dialect.minutes(c.start, c.end) <= MOMENTARY_THRESHOLD_MIN
        )
    return sa.and_(sa.not_(c.planned), sa.or_(c.momentary, short))


def momentary_event_rows(dialect: Dialect, period: Period) -> sa.Subquery:
    """One row per customer momentary interruption *event* (IEEE 1366 MAIFIe).

    A customer's momentary interruptions chain into one event while each starts within 5
    minutes of the previous one; the event is named by its first interruption's incident
    and dated by its start. So a momentary interruption starts an event when no earlier
    one of the same customer (by start, then incident id) began within the 5 minutes
    before it: an anti-join probing ``ix_interruptions_momentary`` rather than a window
    over every row.
    """
    p = I.alias("previous")
    if dialect.postgres:
        close_enough = p.c.start >= I.c.start - FIVE_MINUTES
    else:
        close_enough = dialect.minutes(p.c.start, I.c.start) <= MOMENTARY_THRESHOLD_MIN
    earlier = (
        sa.select(sa.literal(1))
        .where(
            p.c.customer_id == I.c.customer_id,
            momentary_row(dialect, p),
            p.c.start <= I.c.start,
            close_enough,
            sa.or_(
                p.c.start < I.c.start,
                sa.and_(p.c.start == I.c.start, p.c.incident_id < I.c.incident_id),
            ),
        )
        .exists()
    )
    return (
        sa.select(
            I.c.incident_id.label("event_id"),
            I.c.customer_id,
            I.c.start.label("occurred_at"),
            I.c.feeder_id,
            I.c.substation,
            I.c.area,
        )
        .where(
            momentary_row(dialect),
            I.c.start >= ts(period.start),
            I.c.start < ts(period.end),
            sa.not_(earlier),
        )
        .subquery("momentary_events")
    )


@dataclass(frozen=True, slots=True)
class ReliabilityInputs:
    """The records the pure reliability report takes."""

    customers: list[CustomerRecord]
    interruptions: list[InterruptionRecord]
    momentary_events: list[MomentaryEvent]


def _opt(value: Any) -> datetime | None:
    return None if value is None else utc(value)


async def load_customers(session: AsyncSession) -> list[CustomerRecord]:
    """Every customer served, with feeder, substation and area."""
    cg = customer_groups()
    rows = await session.execute(sa.select(cg).order_by(cg.c.customer_id))
    return [CustomerRecord(r.customer_id, r.feeder_id, r.substation, r.area) for r in rows]


async def load_interruptions(
    session: AsyncSession, period: Period, where: ColumnElement[bool] | None = None
) -> list[InterruptionRecord]:
    """Interruption records overlapping the period (optionally narrowed by ``where``),
    grouped by the feeder, substation and area stored on each row."""
    query = sa.select(I).where(overlapping(period))
    if where is not None:
        query = query.where(where)
    rows = await session.execute(query.order_by(I.c.start, I.c.incident_id, I.c.customer_id))
    return [
        InterruptionRecord(
            incident_id=r.incident_id,
            customer_id=r.customer_id,
            start=utc(r.start),
            end=_opt(r.end),
            planned=bool(r.planned),
            momentary=bool(r.momentary),
            feeder_id=r.feeder_id or "",
            substation=r.substation or "",
            area=r.area or "",
        )
        for r in rows
    ]


async def load_momentary_events(session: AsyncSession, period: Period) -> list[MomentaryEvent]:
    """The momentary events that start in the period, one per (event, customer)."""
    ev = momentary_event_rows(Dialect.of(session), period)
    rows = await session.execute(sa.select(ev).order_by(ev.c.occurred_at, ev.c.customer_id))
    return [
        MomentaryEvent(
            event_id=r.event_id,
            customer_id=r.customer_id,
            occurred_at=utc(r.occurred_at),
            feeder_id=r.feeder_id or "",
            substation=r.substation or "",
            area=r.area or "",
        )
        for r in rows
    ]


async def load_reliability_inputs(session: AsyncSession, period: Period) -> ReliabilityInputs:
    """Customers, overlapping interruptions and momentary events as plain records."""
    return ReliabilityInputs(
        customers=await load_customers(session),
        interruptions=await load_interruptions(session, period),
        momentary_events=await load_momentary_events(session, period),
    )


async def daily_system_saidi(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    as_of: datetime,
    served: int,
    tz: tzinfo,
) -> dict[Any, float]:
    """System SAIDI per local start day of unplanned sustained interruptions in [start, end).

    Each interruption counts whole on the day it starts (``major_event_days.daily_saidi``),
    computed in the database so five years of history never leave it.
    """
    if served <= 0 or end <= start:
        return {}
    dialect = Dialect.of(session)
    m = measures(dialect, Period(start, end), as_of)
    day = dialect.local_day(I.c.start, tz, start).label("day")
    rows = await session.execute(
        sa.select(day, sa.func.sum(m.duration).label("minutes"))
        .where(I.c.start >= ts(start), I.c.start < ts(end), sa.not_(I.c.planned), m.sustained)
        .group_by(day)
    )
    return {as_date(r.day): float(r.minutes) / served for r in rows}


async def first_interruption_before(session: AsyncSession, before: datetime) -> datetime | None:
    """When the earliest interruption before ``before`` started (history begins then)."""
    value = await session.scalar(sa.select(sa.func.min(I.c.start)).where(I.c.start < ts(before)))
    return None if value is None else utc(value)
