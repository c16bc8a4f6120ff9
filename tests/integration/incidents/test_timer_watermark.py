"""The timer loop's processing watermark (DESIGN section 5, rule 6; bench/storm.py's false
nested outages): a timer due at T fires only once the signals consumer has applied
everything that was in Kafka at T, or once it has been held ``incidents_timer_max_hold_s``.

A breaker locks out at minute 0 (every meter of F01 reports power_off), closes at minute 20
(the nested check is due at 30) and every meter reports power_on at minute 21. In the
storm the power_on messages sat in Kafka past minute 30 while the consumer drained an older
backlog; the nested check then saw every meter still OFF and opened a false nested outage.
Here the consumer is stalled (not polled) over that window on a MemoryBus and a virtual
clock, and the timer loop's step (``run_due_caught_up``) runs every minute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Gauge

from schemas.signals import Signal
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.incidents import orm
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.settings import IncidentsSettings
from tests.integration.incidents.quality_harness import (
    SIZES,
    at,
    build_topology,
    customers_of,
    device,
    lifecycle_events,
)
from tests.integration.incidents.service_runs import (
    Sessions,
    power,
    produce,
    started_services,
    two_databases,
)

CUSTOMERS = [c for t in SIZES for c in customers_of(t)]
NESTED_DUE_MIN = 30  # close at 20 + the 10 min nested-check window
END_MIN = 45


def script() -> dict[int, list[Signal]]:
    """Signals produced to Kafka, by the minute they arrive."""
    return {
        0: [device("open-bkr", "device_open", "F01-BKR", 0)]
        + [power(f"off-{c}", "power_off", c, 0) for c in CUSTOMERS],
        20: [device("close-bkr", "device_close", "F01-BKR", 20)],
        21: [power(f"on-{c}", "power_on", c, 21) for c in CUSTOMERS],
    }


class Run:
    """One incidents service on its own database, MemoryBus and virtual clock."""

    def __init__(self, svc: IncidentsService, sessions: Sessions, bus: MemoryBus,
                 clock: VirtualClock, gauge: Gauge) -> None:  # fmt: skip
        self.svc, self.sessions, self.bus, self.clock, self.gauge = svc, sessions, bus, clock, gauge

    async def produce(self, signals: list[Signal]) -> None:
        await produce(self.bus, signals)

    async def consume(self) -> None:
        while await self.svc.run_once():
            pass

    async def minute(self, m: int, *, stalled: bool) -> None:
        """Minute ``m``: the clock moves, its signals reach Kafka, the consumer polls unless
        ``stalled`` (busy with an older backlog), and the timer loop takes its step."""
        await self.clock.advance_to(at(m))
        await self.produce(script().get(m, []))
        if not stalled:
            await self.consume()
        await self.svc.run_due_caught_up()

    async def incidents(self) -> list[tuple[str, str, str | None, int]]:
        t = orm.incidents
        async with self.sessions() as session:
            rows = await session.execute(
                sa.select(t.c.id, t.c.status, t.c.parent_incident_id, t.c.customers_affected)
                .order_by(t.c.id)
            )  # fmt: skip
            return [tuple(r) for r in rows]

    async def nested(self) -> list[str]:
        return [iid for iid, _, parent, _ in await self.incidents() if parent is not None]

    async def events(self) -> list[tuple[str, int, str, str]]:
        return [
            (e["incident_id"], e["seq"], e["type"], e["occurred_at"])
            for e in await lifecycle_events(self.sessions)
        ]

    def hold_s(self) -> float:
        value = list(self.gauge.collect())[0].samples[0].value
        return float(value)


@pytest.fixture(params=["postgres", "sqlite"])
def db_urls(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    server = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return two_databases(server, tmp_path, "mark")


@pytest.fixture
async def runs(db_urls: list[str], request: pytest.FixtureRequest) -> AsyncIterator[list[Run]]:
    max_hold_s = getattr(request, "param", 300.0)
    gauges: list[Gauge] = []

    def build(sessions: Sessions, bus: MemoryBus, clock: VirtualClock) -> IncidentsService:
        settings = IncidentsSettings(
            incidents_poll_timeout_s=0, incidents_timer_max_hold_s=max_hold_s
        )
        gauges.append(Gauge("hold_seconds", "test", registry=CollectorRegistry()))
        return IncidentsService(
            settings, bus, sessions, clock, build_topology(), hold_gauge=gauges[-1]
        )

    async with started_services(db_urls, build) as started:
        pairs = zip(started, gauges, strict=True)
        yield [Run(r.svc, r.sessions, r.bus, r.clock, g) for r, g in pairs]


class TestTimerWatermark:
    async def test_the_nested_check_waits_for_the_backlog_and_matches_a_run_without_one(
        self, runs: list[Run]
    ) -> None:
        backlog, prompt = runs
        # the power_on messages wait in Kafka past the nested due time (30), caught up at 34,
        # before the default maximum hold (300 s) would release the check at 35
        stall = range(21, 34)
        for m in range(END_MIN + 1):
            await prompt.minute(m, stalled=False)
            await backlog.minute(m, stalled=m in stall)
            if m in stall and m >= NESTED_DUE_MIN:
                # the check is due but the evidence that had arrived by then is unread
                assert await backlog.nested() == []
                # caught up last at minute 20; the horizon is at most 300 s behind
                assert backlog.hold_s() == min((m - 20) * 60, 300)
                assert backlog.svc.timer_horizon() < at(NESTED_DUE_MIN)
                assert backlog.svc.next_wake is not None
                assert backlog.svc.next_wake <= at(NESTED_DUE_MIN)
        assert await prompt.nested() == []
        assert backlog.hold_s() == 0
        assert await backlog.incidents() == await prompt.incidents()
        assert await backlog.events() == await prompt.events()
        assert [status for _, status, _, _ in await backlog.incidents()] == ["restored"]

    async def test_without_the_hold_the_stalled_backlog_opens_a_false_nested_outage(
        self, runs: list[Run]
    ) -> None:
        # What the storm saw (run_due fires on the clock alone): proof the scenario bites.
        run = runs[0]
        for m in range(NESTED_DUE_MIN + 1):
            await run.clock.advance_to(at(m))
            await run.produce(script().get(m, []))
            if m < 21:
                await run.consume()
            await run.svc.run_due()
        assert await run.nested() != []

    @pytest.mark.parametrize("runs", [600.0], indirect=True)
    async def test_a_timer_held_past_the_maximum_hold_fires_anyway(self, runs: list[Run]) -> None:
        run = runs[0]
        valve_min = NESTED_DUE_MIN + 10  # incidents_timer_max_hold_s = 600
        for m in range(valve_min + 1):
            await run.minute(m, stalled=m >= 21)  # the consumer never catches up again
            if m < valve_min:
                assert await run.nested() == []
        # evidence still unread, but the check may not starve: it judges what it has
        assert await run.nested() != []
        assert run.hold_s() == 600
        assert run.svc.timer_horizon() == at(valve_min - 10)


class TestConsumerWatermark:
    async def test_it_moves_only_when_everything_in_the_partitions_was_applied(
        self, runs: list[Run]
    ) -> None:
        run = runs[0]
        consumer = run.svc._batch_consumer
        assert consumer.caught_up_at is None
        # nothing proven yet: the horizon is the safety valve's
        assert run.svc.timer_horizon() == at(0) - timedelta(seconds=300)
        await run.clock.advance_to(at(1))
        await run.produce([power(f"off-{c}", "power_off", c, 1) for c in CUSTOMERS[:3]])
        assert await run.svc.run_once(max_records=2) == 2
        assert consumer.caught_up_at is None  # a full batch: more was waiting
        await run.clock.advance_to(at(2))
        assert await run.svc.run_once(max_records=2) == 1
        assert consumer.caught_up_at == at(2)
        await run.clock.advance_to(at(3))
        await run.produce([power(f"off-{c}", "power_off", c, 3) for c in CUSTOMERS[3:4]])
        await run.clock.advance_to(at(4))
        assert run.svc.timer_horizon() == at(2)  # the record of minute 3 is unread
        assert await run.svc.run_once() == 1
        assert run.svc.timer_horizon() == at(4)
