"""Voltage readings → compliance minutes, sags/swells and voltage incidents, through the
incidents handlers with the quality hooks installed (PostgreSQL ``outagedesk_i3`` and SQLite)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate_engine
from services.incidents import orm
from services.incidents.quality_orm import (
    customer_reports,
    power_quality_counts,
    voltage_minutes,
    voltage_readings,
)
from services.incidents.voltage_store import ReadingRow, minutes_by_day, store_reading
from tests.integration.incidents.quality_harness import (
    Driver,
    at,
    customer_signal,
    customers_of,
    fresh_database,
    lifecycle_events,
    rows,
    voltage,
)

Sessions = async_sessionmaker[AsyncSession]
T1 = customers_of("T1")


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated ``outagedesk_i3`` on PostgreSQL, or an empty SQLite file."""
    if request.param == "postgres":
        return asyncio.run(fresh_database(request.getfixturevalue("pg_url")))
    return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(db_url)
    try:
        await migrate_engine(engine, schemas=["incidents"])
        yield session_factory(engine)
    finally:
        await engine.dispose()


def round_of(minutes: float, volts: dict[str, float]) -> list:  # type: ignore[type-arg]
    return [voltage(f"v-{c}-{minutes:g}", c, minutes, v) for c, v in volts.items()]


LOW = {T1[0]: 190.0, T1[1]: 190.0, T1[2]: 220.0, T1[3]: 220.0}
NORMAL = dict.fromkeys(T1, 220.0)


class TestVoltageIncident:
    async def test_opened_and_resolved_from_readings(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        await d.feed(*round_of(15, LOW))
        assert await lifecycle_events(sessions) == []  # one out-of-band reading is not enough
        await d.feed(*round_of(30, LOW))
        await d.feed(*round_of(45, NORMAL))
        await d.feed(*round_of(60, NORMAL))

        events = await lifecycle_events(sessions)
        assert [(e["type"], e["seq"]) for e in events] == [
            ("voltage_opened", 1), ("voltage_resolved", 2),
        ]  # fmt: skip
        opened = events[0]
        assert opened["incident_id"] == "VOLT-T1-20260714003000"
        assert opened["occurred_at"] == at(30).isoformat()
        assert opened["incident"]["kind"] == "voltage"
        assert opened["incident"]["transformer_id"] == "T1"
        assert opened["incident"]["customers_affected"] == 4
        added = [c if isinstance(c, str) else c["customer_id"] for c in opened["customers_added"]]
        assert sorted(added) == sorted(T1)
        (inc,) = await rows(sessions, orm.incidents)
        assert inc.status == "resolved"
        assert inc.restored_at.replace(tzinfo=dt.UTC) == at(60)
        assert inc.seq == 2
        assert inc.sla == {"acknowledge": "breached"}  # nobody acknowledged within 5 min

    async def test_duplicates_change_nothing(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        batches = [round_of(m, LOW if m <= 30 else NORMAL) for m in (15, 30, 45, 60)]
        for batch in batches:
            await d.feed(*batch)
        before = (
            await lifecycle_events(sessions),
            await rows(sessions, voltage_minutes, voltage_minutes.c.meter_id),
            await rows(sessions, orm.incidents),
        )
        for batch in batches:  # re-delivered (and a restart in between)
            await Driver(sessions).feed(*batch)
        row = ReadingRow("v-C-T1-1-30", "M-T1-1", "T1", "F01", at(30), 900, 190.0, None, None,
                         False)  # fmt: skip
        async with UnitOfWork(sessions) as uow:  # the store's own guard, below the dedup
            assert not await store_reading(uow.session, row, "urban", ZoneInfo("Asia/Shanghai"))
            await uow.commit()
        after = (
            await lifecycle_events(sessions),
            await rows(sessions, voltage_minutes, voltage_minutes.c.meter_id),
            await rows(sessions, orm.incidents),
        )
        assert after == before
        assert len(await rows(sessions, voltage_readings)) == 16

    async def test_qualified_rate_minutes(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        for m in (15, 30, 45, 60):
            await d.feed(*round_of(m, LOW if m <= 30 else NORMAL))
        got = {
            r.meter_id: (r.day, r.area, r.minutes_monitored, r.minutes_out_of_band)
            for r in await rows(sessions, voltage_minutes, voltage_minutes.c.meter_id)
        }
        day = dt.date(2026, 7, 14)
        assert got == {
            "M-T1-1": (day, "urban", 60.0, 30.0), "M-T1-2": (day, "urban", 60.0, 30.0),
            "M-T1-3": (day, "urban", 60.0, 0.0), "M-T1-4": (day, "urban", 60.0, 0.0),
        }  # fmt: skip
        monitored = sum(v[2] for v in got.values())
        out = sum(v[3] for v in got.values())
        assert (1 - out / monitored) * 100 == pytest.approx(75.0)

    async def test_monitor_rebuilt_after_restart_opens_a_new_incident(
        self, sessions: Sessions
    ) -> None:
        first = Driver(sessions)
        for m in (15, 30, 45, 60):
            await first.feed(*round_of(m, LOW if m <= 30 else NORMAL))
        second = Driver(sessions)  # no monitor in memory: rebuilt from the stored readings
        high = {T1[0]: 240.0, T1[1]: 240.0, T1[2]: 220.0, T1[3]: 220.0}
        await second.feed(*round_of(75, high))
        assert len(await lifecycle_events(sessions)) == 2
        await second.feed(*round_of(90, high))
        events = await lifecycle_events(sessions)
        assert [(e["incident_id"], e["type"], e["seq"]) for e in events[2:]] == [
            ("VOLT-T1-20260714013000", "voltage_opened", 1),
        ]
        assert second.hooks.watch.rebuilds == 1

    async def test_low_voltage_report_confirmed_by_a_reading(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        reporter = customers_of("T2")[0]
        await d.feed(customer_signal("r-1", "call_low_voltage", reporter, 20))
        await d.feed(voltage("v-r-30", reporter, 30, 190.0))
        events = await lifecycle_events(sessions)
        assert [(e["type"], e["seq"]) for e in events] == [("voltage_opened", 1), ("confirmed", 2)]
        assert events[1]["incident"]["status"] == "confirmed"
        (report,) = await rows(sessions, customer_reports)
        assert (report.kind, report.incident_id) == ("call_low_voltage", None)  # none yet
        await d.feed(customer_signal("r-2", "call_low_voltage", reporter, 40))
        tagged = {r.event_id: r.incident_id for r in await rows(sessions, customer_reports)}
        assert tagged["r-2"] == "VOLT-T2-20260714003000"


class TestPowerQuality:
    async def test_sags_and_swells_counted_by_ieee1159_class_once(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        c = T1[0]
        sag = voltage("s-1", c, 5, 0).model_copy(
            update={"kind": "sag", "data": {"magnitude_v": 150.0, "duration_ms": 120}}
        )
        sag2 = sag.model_copy(update={"signal_id": "s-2", "occurred_at": at(6)})
        swell = sag.model_copy(
            update={"signal_id": "s-3", "kind": "swell",
                    "data": {"magnitude_v": 250.0, "duration_ms": 2000}}
        )  # fmt: skip
        await d.feed(sag, sag2, swell)
        await Driver(sessions).feed(sag, swell)  # re-delivered after a restart
        got = {
            (r.kind, r.category): r.count
            for r in await rows(sessions, power_quality_counts, power_quality_counts.c.kind)
        }
        assert got == {("sag", "instantaneous_sag"): 2, ("swell", "momentary_swell"): 1}


class TestMinutesByDay:
    def test_an_interval_across_local_midnight_is_split(self) -> None:
        tz = ZoneInfo("Asia/Shanghai")
        end = dt.datetime(2026, 7, 14, 16, 5, tzinfo=dt.UTC)  # 00:05 local on the 15th
        got = minutes_by_day(end - dt.timedelta(minutes=15), end, tz)
        assert got == {dt.date(2026, 7, 14): 10.0, dt.date(2026, 7, 15): 5.0}


async def test_nothing_else_is_stored(sessions: Sessions) -> None:
    """Readings alone create no outage state."""
    await Driver(sessions).feed(*round_of(15, NORMAL))
    async with sessions() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(orm.interruptions)) == 0
