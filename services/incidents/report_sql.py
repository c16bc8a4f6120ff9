"""SQL building blocks the report queries share, portable to PostgreSQL and SQLite.

Timestamps are stored in UTC. On SQLite they are ``YYYY-MM-DD HH:MM:SS.ffffff`` text, which
compares and ``julianday()``-parses correctly as long as every bound value is UTC too, so
every datetime goes through :func:`utc` before it is bound. The only dialect differences
(minutes between two instants, local calendar day, greatest/least) live in this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.common.topology import orm as topo
from services.incidents.orm import TS


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC (naive values, as SQLite returns them, are UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts(value: datetime) -> ColumnElement[Any]:
    """A bound timestamp literal, in UTC so that SQLite text comparison is right."""
    return sa.literal(utc(value), TS)


def as_date(value: Any) -> date:
    """A SQL date result (``date`` on PostgreSQL, ISO text on SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class Dialect:
    """Expressions whose SQL differs between PostgreSQL and SQLite."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"

    @classmethod
    def of(cls, session: AsyncSession) -> Dialect:
        """The dialect of the session's bind."""
        return cls(session.get_bind().dialect.name)

    def minutes(self, start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[Any]:
        """``end − start`` in minutes, as a float."""
        if self.postgres:
            return sa.cast(sa.extract("epoch", end - start), sa.Float) / 60.0
        # julianday() is a double of ~2.46e6 days, good to ~40 µs: round the difference to
        # the millisecond (SQLite's own time resolution) so whole minutes stay whole.
        seconds = (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
        return sa.func.round(seconds, 3) / 60.0

    def greatest(self, *values: ColumnElement[Any]) -> ColumnElement[Any]:
        """The largest argument (SQLite's multi-argument ``max``)."""
        return sa.func.greatest(*values) if self.postgres else sa.func.max(*values)

    def least(self, *values: ColumnElement[Any]) -> ColumnElement[Any]:
        """The smallest argument (SQLite's multi-argument ``min``)."""
        return sa.func.least(*values) if self.postgres else sa.func.min(*values)

    def local_day(self, column: ColumnElement[Any], tz: tzinfo, near: datetime) -> Any:
        """The calendar day of ``column`` in ``tz``.

        PostgreSQL converts with the zone's rules (DST-exact). SQLite has no zone database,
        so it shifts by the zone's UTC offset at ``near`` (exact for zones without DST,
        such as the default Asia/Shanghai).
        """
        if self.postgres and isinstance(tz, ZoneInfo):
            return sa.cast(sa.func.timezone(tz.key, column), sa.Date)
        offset = utc(near).astimezone(tz).utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        if self.postgres:
            shifted = sa.func.timezone("UTC", column) + sa.func.make_interval(
                0, 0, 0, 0, 0, minutes
            )
            return sa.cast(shifted, sa.Date)
        return sa.func.date(column, f"{minutes:+d} minutes")


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant the local ``day`` starts at."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


def in_local_days(
    column: ColumnElement[Any], days: Iterable[date], tz: tzinfo
) -> ColumnElement[bool]:
    """Whether ``column`` falls on one of the local ``days`` (portable: UTC ranges)."""
    ranges = [
        sa.and_(
            column >= ts(local_midnight(d, tz)),
            column < ts(local_midnight(d + timedelta(days=1), tz)),
        )
        for d in sorted(set(days))
    ]
    return sa.or_(*ranges) if ranges else sa.false()


def customer_groups() -> sa.Subquery:
    """customer_id, meter_id, feeder_id, substation, area of every customer served.

    A transformer's own area overrides its feeder's (DESIGN section 2).
    """
    c, t, d, f = topo.customers, topo.transformers, topo.devices, topo.feeders
    return (
        sa.select(
            c.c.id.label("customer_id"),
            c.c.meter.label("meter_id"),
            f.c.id.label("feeder_id"),
            f.c.substation.label("substation"),
            sa.func.coalesce(t.c.area, f.c.area).label("area"),
        )
        .select_from(
            c.join(t, t.c.id == c.c.transformer)
            .join(d, d.c.id == t.c.device)
            .join(f, f.c.id == d.c.feeder)
        )
        .subquery("cg")
    )


def group_key_expr(group_by: str, groups: sa.FromClause) -> ColumnElement[Any]:
    """The SQL group key matching ``reports.aggregation.group_key`` (unknown for no match).

    ``groups`` has feeder_id, substation and area columns: ``customer_groups()`` or the
    interruptions table itself (its rows carry their customer's groups).
    """
    if group_by == "all":
        return sa.literal("all", sa.Text)
    column = {"area": "area", "feeder": "feeder_id", "substation": "substation"}[group_by]
    return sa.func.coalesce(groups.c[column], sa.literal("unknown", sa.Text))
