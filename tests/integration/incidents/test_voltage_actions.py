"""Operator actions on incidents the correlator does not hold (voltage, closed outages) and
the ``reported`` marks notify needs for ``voltage_acknowledged``: through the incidents
handlers with the quality hooks installed, on PostgreSQL (``outagedesk_w``) and SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate_engine
from services.incidents import orm
from services.incidents.actions import perform_action
from services.incidents.errors import InvalidRequest, InvalidTransition, VersionMismatch
from services.incidents.incident_queries import IncidentDetail, get_incident
from tests.integration.incidents.incidents_db import fresh_pg_database
from tests.integration.incidents.quality_harness import (
    Driver,
    at,
    customer_signal,
    customers_of,
    device,
    lifecycle_events,
    rows,
    voltage,
)

Sessions = async_sessionmaker[AsyncSession]
T1 = customers_of("T1")
LOW = {T1[0]: 190.0, T1[1]: 190.0, T1[2]: 220.0, T1[3]: 220.0}
NORMAL = dict.fromkeys(T1, 220.0)
VOLT = "VOLT-T1-20260714003000"  # opened by the readings at 30 min


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return asyncio.run(fresh_pg_database(request.getfixturevalue("pg_url"), "outagedesk_w"))
    return f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(db_url)
    try:
        await migrate_engine(engine, schemas=["topology", "incidents"])
        yield session_factory(engine)
    finally:
        await engine.dispose()


def round_of(minutes: float, volts: dict[str, float]) -> list[Any]:
    return [voltage(f"v-{c}-{minutes:g}", c, minutes, v) for c, v in volts.items()]


async def open_voltage(d: Driver, resolve: bool = False) -> None:
    await d.feed(*round_of(15, LOW))
    await d.feed(*round_of(30, LOW))
    if resolve:
        await d.feed(*round_of(45, NORMAL))
        await d.feed(*round_of(60, NORMAL))


async def act(
    d: Driver, action: str, params: Mapping[str, Any] | None = None, version: int | None = None,
    incident_id: str = VOLT,
) -> IncidentDetail:  # fmt: skip
    """One operator action in its own committed unit of work (``version``: If-Match)."""
    async with UnitOfWork(d.sessions) as uow:
        detail = await perform_action(
            uow, incident_id, action, params or {}, "op-1", version, d.ctx
        )
        await uow.commit()
    return detail


async def stored(sessions: Sessions, incident_id: str = VOLT) -> IncidentDetail:
    async with sessions() as session:
        detail = await get_incident(session, incident_id)
    assert detail is not None
    return detail


async def events_of(sessions: Sessions, incident_id: str = VOLT) -> list[dict[str, Any]]:
    return [e for e in await lifecycle_events(sessions) if e["incident_id"] == incident_id]


class TestVoltageIncidentActions:
    async def test_acknowledge_etr_note_then_cancel(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        await open_voltage(d)
        v0 = (await stored(sessions)).version
        with pytest.raises(VersionMismatch):
            await act(d, "acknowledge", version=v0 - 1)

        acked = await act(d, "acknowledge", version=v0)
        assert acked.incident["status"] == "confirmed"
        assert acked.incident["acknowledged_at"] == at(30).isoformat()
        assert acked.sla["acknowledge"] == "met"  # the SLA hook ran on the action
        assert acked.version > v0
        etr = at(180)
        with_etr = await act(d, "etr", {"etr": etr, "reason": "tap change"}, acked.version)
        assert with_etr.incident["etr"] == etr.isoformat()
        assert [h["etr"] for h in with_etr.etr_history] == [etr.isoformat()]
        noted = await act(d, "notes", {"text": "crew checking taps"}, with_etr.version)
        assert noted.timeline[-1]["detail"] == "crew checking taps"
        cancelled = await act(d, "cancel", {"reason": "meter fault"}, noted.version)
        assert cancelled.incident["status"] == "cancelled"
        assert (await stored(sessions)).version == cancelled.version

        events = await events_of(sessions)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        mine = [(e["type"], e["actor"]) for e in events if e["actor"] == "op-1"]
        assert mine == [("confirmed", "op-1"), ("etr_set", "op-1"), ("cancelled", "op-1")]
        audit = await rows(sessions, orm.audit, orm.audit.c.id)
        assert [a.action for a in audit] == ["acknowledge", "etr", "notes", "cancel"]
        assert (audit[0].before["status"], audit[0].after["status"]) == ("detected", "confirmed")
        with pytest.raises(InvalidTransition) as info:
            await act(d, "acknowledge")
        assert (info.value.current, info.value.allowed) == ("cancelled", ())

    async def test_close_a_resolved_one_with_cause_and_refuse_the_rest(
        self, sessions: Sessions
    ) -> None:
        d = Driver(sessions)
        await open_voltage(d, resolve=True)
        before = await stored(sessions)
        assert before.incident["status"] == "resolved"
        refused: list[tuple[str, dict[str, Any]]] = [
            ("acknowledge", {}), ("etr", {"etr": at(200)}), ("crew", {"crew_id": "K1"}),
            ("arrived", {}), ("restore", {}), ("cancel", {"reason": "x"}),
            ("merge", {"into": VOLT}),
        ]  # fmt: skip
        for action, params in refused:
            with pytest.raises(InvalidTransition) as info:
                await act(d, action, params)
            assert (info.value.current, info.value.allowed) == ("resolved", ("closed",)), action
        with pytest.raises(InvalidRequest):
            await act(d, "close", {})
        assert (await stored(sessions)).version == before.version  # refused: nothing written

        closed = await act(d, "close", {"cause": "transformer_tap"}, before.version)
        assert closed.incident["status"] == "closed"
        assert closed.incident["cause"] == "transformer_tap"
        last = (await events_of(sessions))[-1]
        assert (last["type"], last["incident"]["status"], last["actor"]) == (
            "closed", "closed", "op-1",
        )  # fmt: skip
        assert [a.action for a in await rows(sessions, orm.audit)] == ["close"]


class TestEtagVersion:
    async def test_note_on_resolved_voltage_incident_moves_version_forward(
        self, sessions: Sessions
    ) -> None:
        d = Driver(sessions)
        await open_voltage(d, resolve=True)
        v0 = (await stored(sessions)).version
        assert v0 >= 2
        first = await act(d, "notes", {"text": "one"}, v0)
        second = await act(d, "notes", {"text": "two"}, first.version)
        assert v0 < first.version < second.version
        assert (await stored(sessions)).version == second.version
        with pytest.raises(VersionMismatch):
            await act(d, "notes", {"text": "stale"}, first.version)
        ns = [r.n for r in await rows(sessions, orm.timeline, orm.timeline.c.n)]
        assert ns == list(range(1, len(ns) + 1))

    async def test_closing_an_outage_the_correlator_drops_moves_version_forward(
        self, sessions: Sessions
    ) -> None:
        d = Driver(sessions)
        await d.feed(device("d-open", "device_open", "F01-FU1", 0))
        await d.feed(device("d-close", "device_close", "F01-FU1", 30))
        (row,) = await rows(sessions, orm.incidents)
        assert row.status == "restored"
        closed = await act(d, "close", {"cause": "tree"}, row.version, incident_id=row.id)
        noted = await act(d, "notes", {"text": "after"}, closed.version, incident_id=row.id)
        assert row.version < closed.version < noted.version
        assert (await stored(sessions, row.id)).version == noted.version


def added(event: dict[str, Any]) -> dict[str, bool]:
    """customer → reported, of an event's ``customers_added``."""
    return {c["customer_id"]: c.get("reported", False) for c in event["customers_added"]}


class TestReportedCustomers:
    async def test_reporter_confirmed_by_reading_is_marked(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        reporter = customers_of("T2")[0]
        await d.feed(customer_signal("r-1", "call_low_voltage", reporter, 20))
        await d.feed(voltage("v-r-30", reporter, 30, 190.0))
        opened = (await lifecycle_events(sessions))[0]
        assert opened["type"] == "voltage_opened"
        marks = added(opened)
        assert marks[reporter] is True
        assert not any(v for c, v in marks.items() if c != reporter)
        assert len(marks) == 10

    async def test_pending_report_is_marked_when_readings_open_it(
        self, sessions: Sessions
    ) -> None:
        d = Driver(sessions)
        await d.feed(customer_signal("r-1", "call_low_voltage", T1[3], 20))  # meter in band
        await open_voltage(d)
        (opened,) = await events_of(sessions)
        assert opened["type"] == "voltage_opened"
        assert {c for c, v in added(opened).items() if v} == {T1[3]}

    async def test_report_into_an_open_incident_is_listed_once(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        await open_voltage(d)
        await d.feed(customer_signal("r-1", "call_low_voltage", T1[2], 35))
        await d.feed(customer_signal("r-2", "call_low_voltage", T1[2], 40))  # calls again
        events = await events_of(sessions)
        assert [e["type"] for e in events] == ["voltage_opened", "confirmed", "scope_changed"]
        assert not any(added(events[0]).values())
        assert added(events[2]) == {T1[2]: True}
        assert events[2]["incident"]["status"] == "confirmed"
        async with sessions() as session:
            tagged = await session.scalar(
                sa.select(sa.func.count())
                .select_from(orm.incidents)
                .where(orm.incidents.c.kind == "voltage")
            )
        assert tagged == 1
