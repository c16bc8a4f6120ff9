"""``IncidentsService.run_due`` returns a wake-up covering every pending timer: the
correlator's dwell, confirmation (the momentary boundary) and nested-check timers, and the
SLA deadlines — including those of an incident the timer run itself opened. Voltage
incidents have no timers (a monitor changes only when a reading or report arrives).

A service driven only by its own wake-ups (and its signals) must emit exactly what a service
woken every minute emits, in the same order (PostgreSQL ``outagedesk_w_wake_*`` and SQLite).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from schemas.signals import Signal
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.incidents import orm
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.quality_orm import sla_deadlines
from services.incidents.settings import IncidentsSettings
from services.incidents.state_store import utc
from tests.integration.incidents.quality_harness import (
    at,
    build_topology,
    customers_of,
    device,
    lifecycle_events,
    voltage,
)
from tests.integration.incidents.service_runs import (
    Sessions,
    power,
    produce,
    started_services,
    two_databases,
)

HORIZON_MIN = 300


def script() -> list[tuple[float, Signal]]:
    """A lone OFF meter (dwell → single-customer outage), a SCADA lockout and its close
    (nested check), a voltage problem on T2 and the lone meter's restore."""
    t2 = customers_of("T2")
    out: list[tuple[float, Signal]] = [
        (0, power("off-1", "power_off", "C-T2-1", 0)),
        (20, device("open-fu1", "device_open", "F01-FU1", 20)),
    ]
    for minutes in (30, 45, 60, 75):
        v = 190.0 if minutes < 60 else 220.0
        out += [(minutes, voltage(f"v-{c}-{minutes}", c, minutes, v)) for c in t2[1:5]]
    out += [
        (62, device("close-fu1", "device_close", "F01-FU1", 62)),
        (95, power("on-1", "power_on", "C-T2-1", 95)),
    ]
    return sorted(out, key=lambda pair: pair[0])


async def earliest_pending(sessions: Sessions) -> datetime | None:
    """The earliest pending timer as the tables of record hold it, independently of
    ``run_due``'s own bookkeeping."""
    t, d = orm.correlator_timers, sla_deadlines
    async with sessions() as session:
        found = [
            await session.scalar(sa.select(sa.func.min(t.c.due_at))),
            await session.scalar(
                sa.select(sa.func.min(d.c.at_risk_at)).where(~d.c.completed, ~d.c.at_risk_emitted)
            ),
            await session.scalar(
                sa.select(sa.func.min(d.c.due_at)).where(~d.c.completed, ~d.c.breached_emitted)
            ),
        ]
    return min((v for v in map(utc, found) if v is not None), default=None)


class Harness:
    def __init__(self, svc: IncidentsService, sessions: Sessions, bus: MemoryBus,
                 clock: VirtualClock) -> None:  # fmt: skip
        self.svc, self.sessions, self.bus, self.clock = svc, sessions, bus, clock

    async def deliver(self, signals: list[Signal]) -> None:
        await produce(self.bus, signals)
        while await self.svc.run_once():
            pass

    async def events(self) -> list[tuple[str, int, str, str]]:
        return [
            (e["incident_id"], e["seq"], e["type"], e["occurred_at"])
            for e in await lifecycle_events(self.sessions)
        ]


@pytest.fixture(params=["postgres", "sqlite"])
def db_urls(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    server = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return two_databases(server, tmp_path, "wake")


@pytest.fixture
async def harnesses(db_urls: list[str]) -> AsyncIterator[list[Harness]]:
    def build(sessions: Sessions, bus: MemoryBus, clock: VirtualClock) -> IncidentsService:
        settings = IncidentsSettings(incidents_poll_timeout_s=0)
        return IncidentsService(settings, bus, sessions, clock, build_topology())

    async with started_services(db_urls, build) as runs:
        yield [Harness(r.svc, r.sessions, r.bus, r.clock) for r in runs]


async def run_every_minute(h: Harness) -> None:
    lines = script()
    for minute in range(HORIZON_MIN + 1):
        await h.clock.advance_to(at(minute))
        await h.deliver([s for m, s in lines if m == minute])
        await h.svc.run_due()


async def run_on_wakes(h: Harness, check: Callable[[datetime | None], Any]) -> int:
    """Deliver the script and wake only when ``run_due`` asked to; the number of runs."""
    lines = script()
    wake: datetime | None = None
    runs = 0
    end = at(HORIZON_MIN)
    while True:
        pending = [at(m) for m, _ in lines] + ([wake] if wake is not None else [])
        target = min([p for p in pending if p <= end], default=None)
        if target is None:
            return runs
        await h.clock.advance_to(target)
        await h.deliver([s for m, s in lines if at(m) == target])
        lines = [(m, s) for m, s in lines if at(m) != target]
        wake = await h.svc.run_due()
        runs += 1
        await check(wake)


class TestRunDueWake:
    async def test_a_dwell_opened_outage_gets_its_due_sla_events_and_a_future_wake(
        self, harnesses: list[Harness]
    ) -> None:
        h = harnesses[0]
        await h.deliver([power("off-1", "power_off", "C-T2-1", 0)])
        assert await h.svc.run_due() == at(5)  # single-customer dwell
        await h.clock.advance_to(at(5))
        wake = await h.svc.run_due()
        # the outage is detected at its first evidence (0 min): confirmation and the
        # acknowledge target (at risk at 4, due at 5) are already due in the same run
        types = [t for _, _, t, _ in await h.events()]
        assert types == ["opened", "confirmed", "sla_at_risk", "sla_breached"]
        assert wake == at(12)  # first notice at risk (80 % of 15 min)
        assert wake == await earliest_pending(h.sessions)


    async def test_woken_only_when_asked_it_emits_what_a_minute_poll_emits(
        self, harnesses: list[Harness]
    ) -> None:
        polled, woken = harnesses

        async def check(wake: datetime | None) -> None:
            # nothing the tables of record hold is due before the wake-up it returned
            assert wake == await earliest_pending(woken.sessions)

        await run_every_minute(polled)
        runs = await run_on_wakes(woken, check)
        expected = await polled.events()
        types = {t for _, _, t, _ in expected}
        assert {"opened", "confirmed", "sla_at_risk", "sla_breached", "restored"} <= types
        assert "voltage_opened" in types
        assert await woken.events() == expected
        assert runs < HORIZON_MIN // 5  # it did sleep between timers


@pytest.fixture
async def plain_and_sole_writer(db_urls: list[str]) -> AsyncIterator[list[Harness]]:
    built: list[IncidentsService] = []

    def build(sessions: Sessions, bus: MemoryBus, clock: VirtualClock) -> IncidentsService:
        settings = IncidentsSettings(incidents_poll_timeout_s=0)
        sole_writer = bool(built)  # the second service is the demo's kind
        svc = IncidentsService(settings, bus, sessions, clock, build_topology(),
                               sole_writer=sole_writer)  # fmt: skip
        built.append(svc)
        return svc

    async with started_services(db_urls, build) as runs:
        yield [Harness(r.svc, r.sessions, r.bus, r.clock) for r in runs]


def count_statements(h: Harness) -> list[int]:
    """A counter of the statements the harness's engine runs from now on."""
    count = [0]

    def on_execute(*_args: Any) -> None:
        count[0] += 1

    sa.event.listen(h.sessions.kw["bind"].sync_engine, "before_cursor_execute", on_execute)
    return count


class TestSoleWriterSkipsIdleRuns:
    async def test_it_emits_what_a_plain_service_emits_with_far_fewer_statements(
        self, plain_and_sole_writer: list[Harness]
    ) -> None:
        plain, sole = plain_and_sole_writer
        plain_count, sole_count = count_statements(plain), count_statements(sole)
        await run_every_minute(plain)
        await run_every_minute(sole)
        expected = await plain.events()
        assert {"opened", "confirmed", "sla_at_risk", "sla_breached", "restored"} <= {
            t for _, _, t, _ in expected
        }
        # every timer a signal set, moved or cleared between two runs fired on time
        assert await sole.events() == expected
        assert sole.svc.next_wake == plain.svc.next_wake
        # most of the 301 runs had nothing due and cost no statement
        assert sole_count[0] < plain_count[0] // 2

    async def test_a_timer_set_after_an_idle_run_fires_when_due(
        self, plain_and_sole_writer: list[Harness]
    ) -> None:
        sole = plain_and_sole_writer[1]
        assert await sole.svc.run_due() is None  # nothing stored: the next runs are idle
        await sole.clock.advance_to(at(1))
        await sole.deliver([power("off-1", "power_off", "C-T2-1", 1)])  # dwell until 6
        for minute in range(1, 7):
            await sole.clock.advance_to(at(minute))
            wake = await sole.svc.run_due()
            types = [t for _, _, t, _ in await sole.events()]
            assert ("opened" in types) == (minute == 6), minute
        assert wake == await earliest_pending(sole.sessions)

    async def test_a_failed_run_is_not_taken_for_an_idle_one(
        self, plain_and_sole_writer: list[Harness]
    ) -> None:
        sole = plain_and_sole_writer[1]
        calls: list[datetime] = []

        async def flaky(_uow: Any, now: datetime, _ctx: Any) -> None:
            calls.append(now)
            if len(calls) == 1:
                raise ConnectionError("database gone for a moment")

        sole.svc.ctx.timer_hooks.append(flaky)
        with pytest.raises(ConnectionError):
            await sole.svc.run_due()
        await sole.svc.run_due()  # nothing was stored: the retry must run whole
        assert calls == [at(0), at(0)]
