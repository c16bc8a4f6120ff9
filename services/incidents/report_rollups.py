"""The reliability roll-up tables and how a period maps onto them (migration incidents_0006).

Triggers on ``interruptions`` keep, for *closed* interruptions only, per UTC hour and per
UTC month of their start and per stamped feeder/substation/area (NULL stored as ''):
unplanned sustained count and microseconds, planned sustained count and microseconds,
unplanned momentary count (``report_hours`` / ``report_months``), and the unplanned
sustained count per customer and month (``report_customer_months``); and the momentary
rows chained to an earlier one of the same customer within 5 minutes
(``report_momentary_chained``, so MAIFIe events = momentary rows − chained rows).
``report_hours.max_end`` is an upper bound of the hour's latest end. A report reads whole
months from the roll-ups, adds or removes the few raw rows between a period bound and its
nearest month start, and reads open and boundary-crossing rows directly
(``report_rollup_sums``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.common.orm import metadata_for
from services.incidents.orm import TS
from services.incidents.report_interruptions import I, measures
from services.incidents.report_sql import Dialect, as_date, ts, utc
from services.incidents.reports.records import Period

_metadata = metadata_for("incidents")
US_PER_MIN = 60_000_000.0


def _keys() -> list[sa.Column[Any]]:
    return [sa.Column(k, sa.Text(), nullable=False) for k in ("feeder_id", "substation", "area")]


def _sums() -> list[sa.Column[Any]]:
    names = ("sustained_n", "sustained_us", "planned_n", "planned_us", "momentary_n", "rows_n")
    return [sa.Column(n, sa.BigInteger(), nullable=False) for n in names]


report_hours = sa.Table(
    "report_hours", _metadata, sa.Column("hour", TS, nullable=False), *_keys(), *_sums(),
    sa.Column("max_end", TS),
)  # fmt: skip
report_months = sa.Table(
    "report_months", _metadata, sa.Column("month", TS, nullable=False), *_keys(), *_sums()
)
report_customer_quarters = sa.Table(
    "report_customer_quarters", _metadata, sa.Column("quarter", TS, nullable=False), *_keys(),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("sustained_n", sa.BigInteger(), nullable=False),
)  # fmt: skip
report_momentary_chained = sa.Table(
    "report_momentary_chained", _metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("start", TS, nullable=False), *(sa.Column(k, sa.Text()) for k in
                                              ("feeder_id", "substation", "area")),
)  # fmt: skip
report_customer_months = sa.Table(
    "report_customer_months", _metadata, sa.Column("month", TS, nullable=False), *_keys(),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("sustained_n", sa.BigInteger(), nullable=False),
)  # fmt: skip


def rollup_key(group_by: str, table: sa.FromClause) -> ColumnElement[Any]:
    """The group key of a roll-up row ('' stored for NULL reports as ``unknown``)."""
    if group_by == "all":
        return sa.literal("all", sa.Text)
    column = {"area": "area", "feeder": "feeder_id", "substation": "substation"}[group_by]
    return sa.func.coalesce(sa.func.nullif(table.c[column], ""), sa.literal("unknown", sa.Text))


def floor_hour(t: datetime) -> datetime:
    """The UTC hour ``t`` falls in."""
    return utc(t).replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    """The first UTC hour start at or after ``t``."""
    f = floor_hour(t)
    return f if f == utc(t) else f + timedelta(hours=1)


def _month_start(t: datetime, add: int = 0) -> datetime:
    months = t.year * 12 + t.month - 1 + add
    return datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)


def nearest_month(t: datetime) -> datetime:
    """The UTC month start nearest to ``t`` (the earlier one on a tie)."""
    u = utc(t)
    lo, hi = _month_start(u), _month_start(u, 1)
    return lo if u - lo <= hi - u else hi


@dataclass(frozen=True, slots=True)
class MonthSplit:
    """[start, end) as whole UTC months plus raw start ranges to add and to take away."""

    months: tuple[datetime, datetime] | None
    plus: list[tuple[datetime, datetime]] = field(default_factory=list)
    minus: list[tuple[datetime, datetime]] = field(default_factory=list)


def split_months(start: datetime, end: datetime) -> MonthSplit:
    """Whole months between the month starts nearest to ``start`` and ``end``, corrected by
    the raw ranges between each bound and its month start (a local month in UTC+8 is a UTC
    month and two 8-hour corrections)."""
    s, e = utc(start), utc(end)
    m0, m1 = nearest_month(s), nearest_month(e)
    if m0 >= m1:
        return MonthSplit(None, [(s, e)] if s < e else [])
    split = MonthSplit((m0, m1))
    if s < m0:
        split.plus.append((s, m0))
    elif m0 < s:
        split.minus.append((m0, s))
    if e < m1:
        split.minus.append((e, m1))
    elif m1 < e:
        split.plus.append((m1, e))
    return split


def split_quarters(
    m0: datetime, m1: datetime
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """Months [m0, m1) as whole UTC quarters and the month ranges left at either side."""
    q0 = _month_start(m0, (3 - (m0.month - 1) % 3) % 3)
    q1 = _month_start(m1, -((m1.month - 1) % 3))
    if q0 >= q1:
        return None, [(m0, m1)] if m0 < m1 else []
    return (q0, q1), [(a, b) for a, b in ((m0, q0), (q1, m1)) if a < b]


@functools.lru_cache(maxsize=256)
def _whole_hour_year(tz: tzinfo, year: int) -> bool:
    """Whether ``tz`` keeps a whole-hour offset at every UTC midnight of ``year``."""
    t = datetime(year, 1, 1, tzinfo=UTC)
    while t.year == year:
        offset = t.astimezone(tz).utcoffset() or timedelta(0)
        if offset.total_seconds() % 3600:
            return False
        t += timedelta(days=1)
    return True


def _whole_hour_days(tz: tzinfo, start: datetime, end: datetime) -> bool:
    t = utc(start)
    last = utc(end)
    while True:
        offset = t.astimezone(tz).utcoffset() or timedelta(0)
        if offset.total_seconds() % 3600:
            return False
        if t >= last:
            return True
        t = min(t + timedelta(days=1), last)


def whole_hour_zone(tz: tzinfo, start: datetime, end: datetime) -> bool:
    """Whether every local day boundary in [start, end] is a UTC hour (so an hour bucket
    lies in one local day): the zone's offset is whole hours all along.

    Decided a year at a time and remembered per zone (five years of days cost
    milliseconds per report otherwise); a year with a fractional offset somewhere, or a
    zone that cannot be a cache key, is checked day by day over the range."""
    s, e = utc(start), utc(end)
    try:
        if all(_whole_hour_year(tz, y) for y in range(s.year, e.year + 1)):
            return _whole_hour_days(tz, s, s) and _whole_hour_days(tz, e, e)
    except TypeError:  # an unhashable tzinfo
        pass
    return _whole_hour_days(tz, s, e)


def in_ranges(column: ColumnElement[Any], ranges: list[tuple[datetime, datetime]]) -> Any:
    """``column`` in one of the half-open ranges."""
    parts = [sa.and_(column >= ts(a), column < ts(b)) for a, b in ranges]
    return sa.or_(*parts) if parts else sa.false()


async def rollup_daily_saidi(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    as_of: datetime,
    served: int,
    tz: tzinfo,
) -> dict[date, float]:
    """``report_interruptions.daily_system_saidi`` from the hour roll-up: whole hours from
    ``report_hours``, the partial hours at both ends and open rows from ``interruptions``."""
    if served <= 0 or end <= start:
        return {}
    dialect = Dialect.of(session)
    h0, h1 = ceil_hour(start), floor_hour(end)
    raw_ranges = [(start, h0), (h1, end)] if h0 < h1 else [(start, end)]
    minutes: dict[date, float] = {}
    if h0 < h1:
        h = report_hours
        # Hours first (one per hour, not per feeder), then their local days.
        hourly = (
            sa.select(h.c.hour, sa.func.sum(h.c.sustained_us).label("us"))
            .where(h.c.hour >= ts(h0), h.c.hour < ts(h1))
            .group_by(h.c.hour)
            .subquery("hourly")
        )
        day = dialect.local_day(hourly.c.hour, tz, start).label("day")
        rows = await session.execute(
            sa.select(day, sa.func.sum(hourly.c.us).label("us")).group_by(day)
        )
        for r in rows:
            minutes[as_date(r.day)] = int(r.us or 0) / US_PER_MIN
    m = measures(dialect, Period(utc(start), utc(end)), as_of)
    closed_edge = sa.and_(I.c.end.is_not(None), in_ranges(I.c.start, raw_ranges))
    open_inside = sa.and_(I.c.end.is_(None), I.c.start >= ts(start), I.c.start < ts(end))
    day = dialect.local_day(I.c.start, tz, start).label("day")
    rows = await session.execute(
        sa.select(day, sa.func.sum(m.duration).label("minutes"))
        .where(sa.or_(closed_edge, open_inside), sa.not_(I.c.planned), m.sustained)
        .group_by(day)
    )
    for r in rows:
        d = as_date(r.day)
        minutes[d] = minutes.get(d, 0.0) + float(r.minutes)
    return {d: total / served for d, total in minutes.items() if total}


async def first_hour_ending_after(
    session: AsyncSession, lo: datetime, hi: datetime, after: datetime, *, inclusive: bool
) -> datetime | None:
    """The earliest hour bucket in [lo, hi) whose rows may end after ``after`` (≥ when
    ``inclusive``): rows starting before it all ended by then."""
    h = report_hours
    ends = h.c.max_end >= ts(after) if inclusive else h.c.max_end > ts(after)
    # OFFSET 0 keeps min() from walking the hour index from the beginning of history until
    # a late-ending hour turns up; the max_end index finds the few such hours directly.
    inner = sa.select(h.c.hour).where(h.c.hour < ts(hi), ends)
    if lo != datetime.min.replace(tzinfo=UTC):
        inner = inner.where(h.c.hour >= ts(lo))
    late = inner.offset(0).subquery("late")
    value = await session.scalar(sa.select(sa.func.min(late.c.hour)))
    return None if value is None else utc(value)
