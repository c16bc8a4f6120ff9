"""IncidentsService on the in-memory bus with PostgreSQL and SQLite: a scenario of signals
becomes incidents, interruptions and gapless lifecycle events; redelivery changes nothing;
a restarted service (fresh cache) continues exactly like an uninterrupted one; stale
operator writes are refused."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from incidents_scenario import (  # type: ignore[import-not-found]
    T0,
    at,
    build_topology,
    dump,
    scenario,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.parsing import parse_lifecycle_event
from schemas.topics import LIFECYCLE, SIGNALS
from services.common.bus.base import OutMessage
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork
from services.incidents import orm
from services.incidents.actions import perform_action
from services.incidents.domain.correlation import Correlator
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.errors import InvalidTransition, NotFound, VersionMismatch
from services.incidents.handlers import to_signal_in
from services.incidents.repository import IncidentFilters, get_incident, list_incidents
from services.incidents.settings import IncidentsSettings

Sessions = async_sessionmaker[AsyncSession]
END = 4000.0


class Run:
    """One service on one database; ``restart()`` replaces it with a fresh process-equivalent."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.clock = VirtualClock(T0)
        self.bus = MemoryBus(clock=self.clock)
        self.settings = IncidentsSettings(incidents_poll_timeout_s=0)
        self.topology = build_topology()
        self.service: IncidentsService | None = None
        self.lifecycle: Any = None

    async def start(self) -> None:
        self.service = IncidentsService(
            self.settings, self.bus, self.sessions, self.clock, self.topology
        )
        await self.service.start()
        if self.lifecycle is None:
            self.lifecycle = await self.bus.consumer([LIFECYCLE], group_id="test-reader")

    async def restart(self) -> None:
        assert self.service is not None
        await self.service.stop()
        await self.start()

    async def step(self, until: float) -> None:
        svc = self.service
        assert svc is not None
        while True:
            wake = await svc.run_due()
            if wake is None or wake > at(until):
                break
            await self.clock.advance_to(wake)
        await self.clock.advance_to(at(until))
        await svc.run_due()
        while await svc.run_once():
            pass
        await svc.run_due()
        while await svc.relay_once():
            pass

    async def deliver(self, signals: list[Any]) -> None:
        producer = await self.bus.producer()
        await producer.send(
            [
                OutMessage(SIGNALS, s.model_dump_json().encode(), s.feeder_id.encode())
                for s in signals
            ]
        )

    async def play(self, restart_after: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        for i, (when, signals) in enumerate(scenario()):
            await self.step(when)
            await self.deliver(signals)
            await self.step(when)
            if i in restart_after:
                await self.restart()
        await self.step(END)

    async def published(self) -> list[Any]:
        out: list[Any] = []
        while batch := await self.lifecycle.getmany(timeout_s=0, max_records=1000):
            out.extend(parse_lifecycle_event(r.value) for r in batch)
        return out


def pure_correlator_events() -> list[tuple[str, str]]:
    """The scenario's events from the domain alone, in the relay's per-incident order."""
    corr = Correlator(build_topology())
    events = []
    for when, signals in scenario():
        events += corr.run_due(at(when)).events
        for s in signals:
            events += corr.apply(to_signal_in(s))
    events += corr.run_due(at(END)).events
    return sorted(((e.event_id, e.type) for e in events), key=_order)


SLA_TYPES = frozenset({"sla_at_risk", "sla_breached"})


def _types_by_incident(events: list[Any], keep: Callable[[str], bool]) -> dict[str, list[str]]:
    """Each incident's event types in ``seq`` order, those ``keep`` accepts."""
    pairs = sorted(((e.event_id, e.type) for e in events), key=_order)
    return _types_by_incident_pairs([p for p in pairs if keep(p[1])])


def _types_by_incident_pairs(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for event_id, type_ in sorted(pairs, key=_order):
        out[event_id.rpartition(":")[0]].append(type_)
    return dict(out)


def _order(pair: tuple[str, str]) -> tuple[str, int]:
    iid, _, seq = pair[0].rpartition(":")
    return iid, int(seq)


@pytest.fixture
async def run(make_sessions: Callable[[int], Any]) -> Any:
    r = Run(await make_sessions(0))
    await r.start()
    yield r
    assert r.service is not None
    await r.service.stop()
    await r.bus.close()


class TestIncidentsService:
    async def test_scenario_becomes_incidents_with_gapless_published_events(self, run: Run) -> None:
        await run.play()
        async with run.sessions() as session:
            page = await list_incidents(session, IncidentFilters(), None, 100)
            rows = list(await session.execute(sa.select(orm.interruptions)))
        by_point = {
            (i["device_id"] or i["transformer_id"] or i["customer_id"]): i for i in page.items
        }
        assert by_point["F01-FU1"]["status"] == "restored"
        assert by_point["F01-FU1"]["customers_affected"] == 10
        assert by_point["F01-FU2"]["status"] == "restored"
        assert by_point["F01-FU2"]["confirmed_at"] == at(100).isoformat()
        assert by_point["C-T31-1"]["status"] == "restored"  # lone meter after 5 min
        assert by_point["C-T12-4"]["parent_incident_id"] == by_point["F01-FU1"]["id"]
        owners: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            if r.end is None or r.start < r.end:
                owners[r.customer_id].append(r.incident_id)
        assert owners["C-T12-4"] == [by_point["C-T12-4"]["id"]]  # moved, not copied
        events = await run.published()
        seqs: dict[str, list[int]] = defaultdict(list)
        for e in events:
            seqs[e.incident_id].append(e.seq)
        assert set(seqs) == {i["id"] for i in page.items}
        for iid, got in seqs.items():
            assert got == list(range(1, len(got) + 1)), iid
        # the SLA clock's events are interleaved in each incident's seq; without them every
        # incident tells the pure correlator's story, in its order
        assert _types_by_incident(events, keep=lambda t: t not in SLA_TYPES) == (
            _types_by_incident_pairs(pure_correlator_events())
        )
        sla = _types_by_incident(events, keep=lambda t: t in SLA_TYPES)
        fu1 = by_point["F01-FU1"]["id"]  # nobody acknowledged it: at risk at 4 min, then late
        assert sla[fu1][:2] == ["sla_at_risk", "sla_breached"]
        assert by_point["F01-FU1"]["sla"]["acknowledge"] == "breached"

    async def test_redelivered_signals_change_nothing(self, run: Run) -> None:
        await run.play()
        before = await dump(run.sessions)
        for _, signals in scenario():
            await run.deliver(signals)
        await run.step(END + 10)
        after = await dump(run.sessions)
        assert after == before

    async def test_restarted_service_continues_like_an_uninterrupted_one(
        self, run: Run, make_sessions: Callable[[int], Any]
    ) -> None:
        await run.play()
        other = Run(await make_sessions(1))
        await other.start()
        try:
            await other.play(restart_after={0, 2, 4, 6, 7})
            assert await dump(other.sessions) == await dump(run.sessions)
        finally:
            assert other.service is not None
            await other.service.stop()
            await other.bus.close()

    async def test_operator_actions_check_version_and_transitions(self, run: Run) -> None:
        await run.play()
        svc = run.service
        assert svc is not None
        async with run.sessions() as session:
            page = await list_incidents(session, IncidentFilters(status=["restored"]), None, 1)
        target = page.items[0]
        async with UnitOfWork(run.sessions) as uow:
            with pytest.raises(VersionMismatch):
                await perform_action(
                    uow,
                    target["id"],
                    "close",
                    {"cause": "tree"},
                    "op",
                    target["version"] - 1,
                    svc.ctx,
                )
        async with UnitOfWork(run.sessions) as uow:
            with pytest.raises(InvalidTransition) as info:
                await perform_action(uow, target["id"], "arrived", {}, "op", None, svc.ctx)
            assert info.value.allowed == ("closed",)
        async with UnitOfWork(run.sessions) as uow:
            with pytest.raises(NotFound):
                await perform_action(uow, "nope", "close", {"cause": "x"}, "op", None, svc.ctx)
        async with UnitOfWork(run.sessions) as uow:
            detail = await perform_action(
                uow, target["id"], "close", {"cause": "tree"}, "op", target["version"], svc.ctx
            )
            await uow.commit()
        assert detail.incident["status"] == "closed"
        assert detail.version > target["version"]
        assert detail.timeline[-1]["type"] == "closed"
        async with UnitOfWork(run.sessions) as uow:
            noted = await perform_action(
                uow, target["id"], "notes", {"text": "tree on line"}, "op", detail.version, svc.ctx
            )
            await uow.commit()
        assert noted.timeline[-1]["detail"] == "tree on line"
        async with run.sessions() as session:
            audit = list(await session.execute(sa.select(orm.audit).order_by(orm.audit.c.id)))
            found = await list_incidents(session, IncidentFilters(q="tree on"), None, 10)
            stored = await get_incident(session, target["id"])
        assert [a.action for a in audit] == ["close", "notes"]
        assert audit[0].before["status"] == "restored"
        assert audit[0].after["status"] == "closed"
        assert [i["id"] for i in found.items] == [target["id"]]
        assert stored is not None
        assert stored.version == noted.version
        await run.step(END + 20)
        closed = [e for e in await run.published() if e.incident_id == target["id"]]
        assert closed[-1].type == "closed"
        assert closed[-1].incident.cause == "tree"
