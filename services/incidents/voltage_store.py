"""Voltage readings, compliance minutes per meter and local day, and sags/swells by IEEE 1159
class (DESIGN sections 5.7 and 11). Every query on those tables lives here.

Idempotent: a reading or disturbance is inserted once per ``event_id`` and the daily
roll-ups are only added to when that insert was new, so a re-delivered signal changes
nothing. A reading covers the ``interval_s`` before its ``occurred_at``; where it overlaps
the meter's previous stored reading the overlap is counted once (for the earlier reading,
as :func:`services.incidents.domain.voltage.compliance_minutes` does). A reading that
arrives before an earlier one it overlaps is not re-clipped (late overlapping readings are
rare: meters send fixed, back-to-back intervals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.bulk_sql import chunks
from services.incidents.domain.voltage import VoltageReading
from services.incidents.quality_orm import (
    power_quality_counts,
    power_quality_events,
    voltage_minutes,
    voltage_readings,
)
from services.incidents.state_store import upsert, utc


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One voltage interval summary with where it was measured."""

    event_id: str
    meter_id: str
    transformer_id: str
    feeder_id: str
    occurred_at: datetime
    interval_s: int
    v_avg: float
    v_min: float | None
    v_max: float | None
    in_band: bool


@dataclass(frozen=True, slots=True)
class DisturbanceRow:
    """One sag or swell with its IEEE 1159 class (``unclassified`` when none applies)."""

    event_id: str
    meter_id: str
    transformer_id: str
    feeder_id: str
    kind: str  # sag | swell
    category: str
    magnitude_v: float
    duration_ms: float
    occurred_at: datetime


def minutes_by_day(start: datetime, end: datetime, tz: ZoneInfo) -> dict[date, float]:
    """Minutes of ``[start, end)`` falling on each local day of ``tz``."""
    out: dict[date, float] = {}
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz)
        next_midnight = datetime.combine(local.date() + timedelta(days=1), time(), tz)
        stop = min(end, next_midnight)
        out[local.date()] = out.get(local.date(), 0.0) + (stop - cursor).total_seconds() / 60
        cursor = stop
    return out


async def store_reading(session: AsyncSession, row: ReadingRow, area: str, tz: ZoneInfo) -> bool:
    """Insert a reading and add its minutes to the meter's days; False for a duplicate."""
    return row.event_id in await store_readings(session, [(row, area)], tz)


async def store_readings(
    session: AsyncSession, rows: Sequence[tuple[ReadingRow, str]], tz: ZoneInfo
) -> set[str]:
    """Insert a batch of ``(reading, area)`` and add the new readings' minutes to their
    meters' days; the event ids newly inserted (duplicates add nothing).

    Three statements per batch, not three per reading: the meters' stored readings that can
    overlap the batch are read first, the batch is inserted in one statement, and the
    minutes, clipped in batch order exactly as one-by-one inserts would clip them (each
    reading against the meter's latest earlier reading stored before it), are added per
    meter and day in one upsert.
    """
    if not rows:
        return set()
    stored = await _stored_times(session, [r for r, _ in rows])
    result = await session.execute(
        upsert(session, voltage_readings)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(voltage_readings.c.event_id),
        [_fields(r) for r, _ in rows],
    )
    inserted = set(result.scalars())
    new: set[str] = set()
    days: dict[tuple[str, date], dict[str, Any]] = {}
    for row, area in rows:
        if row.event_id not in inserted or row.event_id in new:
            continue
        new.add(row.event_id)
        times = stored.setdefault(row.meter_id, [])
        start = row.occurred_at - timedelta(seconds=row.interval_s)
        prev = max(
            (at for at, eid in times if at <= row.occurred_at and eid != row.event_id),
            default=None,
        )
        if prev is not None:
            start = max(start, prev)
        times.append((row.occurred_at, row.event_id))
        for day, minutes in minutes_by_day(start, row.occurred_at, tz).items():
            acc = days.setdefault(
                (row.meter_id, day),
                {
                    "meter_id": row.meter_id, "day": day, "transformer_id": row.transformer_id,
                    "feeder_id": row.feeder_id, "area": area, "minutes_monitored": 0.0,
                    "minutes_out_of_band": 0.0,
                },
            )  # fmt: skip
            acc["minutes_monitored"] += minutes
            acc["minutes_out_of_band"] += 0.0 if row.in_band else minutes
    if days:
        stmt = upsert(session, voltage_minutes)
        vm = voltage_minutes.c
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["meter_id", "day"],
                set_={
                    "minutes_monitored": vm.minutes_monitored + stmt.excluded.minutes_monitored,
                    "minutes_out_of_band": vm.minutes_out_of_band
                    + stmt.excluded.minutes_out_of_band,
                },
            ),
            list(days.values()),
        )
    return new


async def _stored_times(
    session: AsyncSession, rows: Sequence[ReadingRow]
) -> dict[str, list[tuple[datetime, str]]]:
    """Meter → ``(occurred_at, event_id)`` of its stored readings that can clip a reading of
    the batch (ending inside some reading's interval)."""
    lo = min(r.occurred_at - timedelta(seconds=r.interval_s) for r in rows)
    hi = max(r.occurred_at for r in rows)
    t = voltage_readings
    out: dict[str, list[tuple[datetime, str]]] = {}
    for part in chunks(sorted({r.meter_id for r in rows})):
        found = await session.execute(
            sa.select(t.c.meter_id, t.c.occurred_at, t.c.event_id).where(
                t.c.meter_id.in_(part), t.c.occurred_at >= lo, t.c.occurred_at <= hi
            )
        )
        for meter_id, occurred_at, event_id in found:
            out.setdefault(meter_id, []).append((utc(occurred_at) or occurred_at, event_id))
    return out


async def store_disturbance(
    session: AsyncSession, row: DisturbanceRow, area: str, tz: ZoneInfo
) -> bool:
    """Insert a sag/swell and count it for its meter, day and class; False for a duplicate."""
    inserted = await session.execute(
        upsert(session, power_quality_events)
        .values(**_fields(row))
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(power_quality_events.c.event_id)
    )
    if inserted.first() is None:
        return False
    stmt = upsert(session, power_quality_counts).values(
        meter_id=row.meter_id, day=row.occurred_at.astimezone(tz).date(), kind=row.kind,
        category=row.category, transformer_id=row.transformer_id, feeder_id=row.feeder_id,
        area=area, count=1,
    )  # fmt: skip
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["meter_id", "day", "kind", "category"],
            set_={"count": power_quality_counts.c.count + 1},
        )
    )
    return True


async def recent_readings(
    session: AsyncSession, transformer_id: str, since: datetime, exclude: Sequence[str] = ()
) -> list[VoltageReading]:
    """The transformer's stored readings from ``since`` on, in event-time order."""
    t = voltage_readings
    stmt = (
        sa.select(t.c.event_id, t.c.meter_id, t.c.occurred_at, t.c.v_avg, t.c.interval_s)
        .where(t.c.transformer_id == transformer_id, t.c.occurred_at >= since)
        .order_by(t.c.occurred_at, t.c.event_id)
    )
    if exclude:
        stmt = stmt.where(t.c.event_id.not_in(list(exclude)))
    return [
        VoltageReading(
            r.event_id, r.meter_id, utc(r.occurred_at) or r.occurred_at, r.v_avg, r.interval_s
        )  # fmt: skip
        for r in await session.execute(stmt)
    ]


async def out_of_band_meters(
    session: AsyncSession, transformer_id: str, since: datetime
) -> set[str]:
    """Meters of the transformer with an out-of-band reading at or after ``since``."""
    t = voltage_readings
    rows = await session.execute(
        sa.select(t.c.meter_id)
        .where(t.c.transformer_id == transformer_id, t.c.occurred_at >= since, ~t.c.in_band)
        .distinct()
    )
    return set(rows.scalars())


def _fields(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}
