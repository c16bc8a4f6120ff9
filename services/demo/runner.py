"""``outagedesk demo``: ingest, incidents and notify in one process on the in-memory bus and
SQLite, replaying a scenario on a virtual clock (DESIGN section 14).

Time advances to each scenario line's ``at`` before it is delivered, in windows that never
cross a timer (confirmation dwell, nested check, SLA deadline, notification retry, the
dispatcher's next action); after each window every service is drained until nothing is left
to consume or publish, so the run is deterministic.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from schemas.topics import LIFECYCLE
from services.common.bus.base import Consumer, OutMessage, Producer
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork, create_engine, is_sqlite, session_factory
from services.common.logging import configure_logging
from services.common.migrate import migrate_engine
from services.common.scenario import ScenarioLine, parse_scenario_lines
from services.common.settings import DEFAULT_DATABASE_URL
from services.common.topology.loader import parse_topology_json
from services.common.topology.model import Topology
from services.common.topology.repository import store_topology
from services.demo.bundle import BUNDLED_SCENARIO, BUNDLED_TOPOLOGY, bundled_path
from services.demo.dispatcher import Dispatcher
from services.demo.operator import apply_action
from services.demo.summary import DemoSummary, collect_summary, print_summary
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.settings import IncidentsSettings
from services.ingest.entrypoints.service import IngestService
from services.ingest.settings import IngestSettings
from services.notify.channels.registry import build_channels
from services.notify.entrypoints.service import NotifyService
from services.notify.service_settings import NotifyServiceSettings

log = structlog.get_logger(__name__)

WINDOW = timedelta(seconds=30)  # scenario lines delivered together, at most this far apart
MAX_DRAIN_ROUNDS = 10_000


@dataclass(frozen=True, slots=True)
class DemoOptions:
    topology: Path | None = None
    scenario: Path | None = None
    speed: float | None = None  # virtual seconds per real second; None: as fast as possible
    until: datetime | None = None
    serve: bool = True
    database_url: str | None = None
    messages: Path = Path("outagedesk-demo-messages.jsonl")
    progress: bool = True


def parse_speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    speed = float(text)
    if speed <= 0:
        raise ValueError("--speed must be positive or 'max'")
    return speed


def parse_until(text: str | None) -> datetime | None:
    if text is None:
        return None
    until = datetime.fromisoformat(text)
    if until.tzinfo is None:
        raise ValueError("--until needs an offset, e.g. 2026-07-16T08:00:00+08:00")
    return until


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _fresh_sqlite(url: str) -> None:
    """A demo run starts from an empty database: remove the files of an earlier run."""
    if not is_sqlite(url) or ":memory:" in url or url.rstrip("/").endswith("aiosqlite:"):
        return
    main = Path(url.split("///", 1)[1])
    for path in main.parent.glob(f"{main.stem}*{main.suffix}*"):
        path.unlink()


class _OutboxWatch:
    """Notes, per service, that an outbox row was inserted (watching the engine's
    statements): until then its relay has nothing to publish, and is skipped."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.written = {"incidents": True, "notify": True}
        self._prefixes = tuple((f"INSERT INTO {schema}.outbox", schema) for schema in self.written)
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO ") and ".outbox " in statement:
            for prefix, schema in self._prefixes:
                if statement.startswith(prefix):
                    self.written[schema] = True


class _Drivers:
    """The three services, the dispatcher's lifecycle consumer and the scenario producer.

    It remembers which steps can have work, to skip the ones that cannot (each costs a
    database transaction): a relay only after its service inserted outbox rows and until
    it finds none; a service's ``run_due`` only when its wake-up has come or it has
    consumed something since its last ``run_due`` (for incidents also after an operator
    action): its timers change no other way, and the wake-up ``run_due`` returns covers
    every pending timer. A skipped step is one that would have found nothing to do, so the
    run is the same.
    """

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession],
                 ingest: IngestService, incidents: IncidentsService, notify: NotifyService,
                 dispatcher_consumer: Consumer, producer: Producer) -> None:
        self.sessions = sessions
        self.ingest, self.incidents, self.notify = ingest, incidents, notify
        self.dispatcher_consumer = dispatcher_consumer
        self.producer = producer
        self.outbox = _OutboxWatch(engine)
        self.changed = {"incidents": True, "notify": True}  # consumed since its last run_due

    async def drain(self, dispatcher: Dispatcher) -> None:
        """Run every consumer and relay until a full round moves nothing."""
        for _ in range(MAX_DRAIN_ROUNDS):
            moved = await self.ingest.run_once()
            if n := await self.incidents.run_once():
                self.changed["incidents"] = True
                moved += n
            moved += await self._relay("incidents", self.incidents.relay_once)
            if n := await self.notify.run_once():
                self.changed["notify"] = True
                moved += n
            moved += await self._relay("notify", self.notify.relay_once)
            records = await self.dispatcher_consumer.getmany(timeout_s=0, max_records=5000)
            for record in records:
                dispatcher.observe(orjson.loads(record.value))
            if records:
                await self.dispatcher_consumer.commit()
            moved += len(records)
            if moved == 0:
                return
        raise RuntimeError("demo: services did not settle")

    async def _relay(self, service: str, relay_once: Callable[[], Awaitable[int]]) -> int:
        written = self.outbox.written
        if not written[service]:
            return 0
        written[service] = False  # rows inserted from here on set it again
        published = await relay_once()
        written[service] = written[service] or published > 0  # a full batch: more may wait
        return published

    async def run_due(self, service: str, wake: datetime | None, now: datetime,
                      run_due: Callable[[], Awaitable[datetime | None]]) -> datetime | None:
        """The service's ``run_due`` if it can have work at ``now``; its next wake-up."""
        if not self.changed[service] and (wake is None or wake > now):
            return wake
        self.changed[service] = False
        return await run_due()


async def run_demo(options: DemoOptions) -> int:
    """Run the demo; returns the process exit code."""
    configure_logging("WARNING", "console")
    url = options.database_url or DEFAULT_DATABASE_URL
    _fresh_sqlite(url)
    options.messages.unlink(missing_ok=True)
    topology_path = options.topology or bundled_path(BUNDLED_TOPOLOGY)
    scenario_path = options.scenario or bundled_path(BUNDLED_SCENARIO)
    topology = parse_topology_json(_read(topology_path))
    lines = list(parse_scenario_lines(_read(scenario_path).splitlines()))
    if not lines:
        print("demo: the scenario is empty", file=sys.stderr)
        return 2
    until = options.until or (lines[-1].at + timedelta(hours=1))

    # The replay is one task on a throwaway database: SQLite runs on the loop's thread.
    engine = create_engine(url, batch=True)
    try:
        await migrate_engine(engine)
        sessions = session_factory(engine)
        async with UnitOfWork(sessions) as uow:
            await store_topology(uow.session, topology)
            await uow.commit()
        summary = await _replay(options, url, engine, sessions, topology, lines, until)
        print_summary(summary, sys.stdout)
    finally:
        await engine.dispose()
    if options.serve:
        from services.demo.serve import serve_demo

        engine = create_engine(url)  # concurrent requests: the threaded driver
        try:
            await serve_demo(url, session_factory(engine), topology, summary)
        finally:
            await engine.dispose()
    return 0


async def _replay(options: DemoOptions, url: str, engine: AsyncEngine,
                  sessions: async_sessionmaker[AsyncSession],
                  topology: Topology,
                  lines: Sequence[ScenarioLine], until: datetime) -> DemoSummary:
    clock = VirtualClock(lines[0].at - timedelta(seconds=1))
    bus = MemoryBus(clock=clock)
    common: dict[str, Any] = {"database_url": url, "consumer_batch_size": 2000}
    ingest = IngestService(IngestSettings(**common, ingest_poll_timeout_s=0), bus, sessions,
                           clock)
    incidents = IncidentsService(IncidentsSettings(**common, incidents_poll_timeout_s=0), bus,
                                 sessions, clock, topology=topology, sole_writer=True)
    # A 1-s pacing grid: rate-limited messages go in rounds of a second's tokens, so the
    # virtual clock stops once a second while a backlog drains instead of per token.
    notify_settings = NotifyServiceSettings(**common, notify_poll_timeout_s=0, notify_port=0,
                                            messages_file=options.messages,
                                            notify_sender_round_s=1.0)
    notify = NotifyService(notify_settings, bus, sessions, clock, topology,
                           build_channels(notify_settings, clock), sole_writer=True)
    dispatcher = Dispatcher()
    for service in (ingest, incidents, notify):
        await service.start()
    drivers = _Drivers(engine, sessions, ingest, incidents, notify,
                       await bus.consumer([LIFECYCLE], group_id="demo-dispatcher"),
                       await bus.producer(client_id="demo-scenario"))
    progress = _Progress(len(lines), lines[0].at, until, enabled=options.progress)
    started = time.monotonic()
    try:
        delivered = await _run_clock(drivers, dispatcher, clock, lines, until, options.speed,
                                     progress)
    finally:
        progress.done()
        for service in (ingest, incidents, notify):
            await service.stop()
        await bus.close()
    return await collect_summary(sessions, lines[0].at, until, options.messages,
                                 time.monotonic() - started, delivered)


async def _run_clock(d: _Drivers, dispatcher: Dispatcher, clock: VirtualClock,
                     lines: Sequence[ScenarioLine], until: datetime, speed: float | None,
                     progress: _Progress) -> int:
    """Deliver the scenario up to ``until`` and fire every timer on the way; the number of
    lines delivered."""
    i = 0
    wakes: dict[str, datetime | None] = {"incidents": None, "notify": None}
    while True:
        timers = [w for w in (*wakes.values(), dispatcher.next_due()) if w is not None]
        next_timer = min((w for w in timers if w <= until), default=None)
        next_line = lines[i].at if i < len(lines) and lines[i].at <= until else None
        if next_line is None and next_timer is None:
            break
        if next_line is not None and (next_timer is None or next_line <= next_timer):
            target = min(next_line + WINDOW, next_timer or until, until)
        else:
            assert next_timer is not None
            target = next_timer
        target = max(target, clock.now())
        await _pace(clock.now(), target, speed)
        batch: list[OutMessage] = []
        while i < len(lines) and lines[i].at <= target:
            line = lines[i]
            batch.append(OutMessage(line.topic, line.value, line.key))
            i += 1
        await clock.advance_to(target)
        if batch:
            await d.producer.send(batch)
        await d.drain(dispatcher)
        await _fire_due(d, dispatcher, clock, wakes)
        progress.update(i, clock.now())
    await clock.advance_to(until)
    await _fire_due(d, dispatcher, clock, wakes)
    return i


async def _fire_due(d: _Drivers, dispatcher: Dispatcher, clock: VirtualClock,
                    wakes: dict[str, datetime | None]) -> None:
    """Fire the timers due now, then whatever they caused, until nothing more is due now;
    refreshes each service's next wake-up (work done may have moved it earlier)."""
    now = clock.now()
    for _ in range(100):
        wakes["incidents"] = await d.run_due(
            "incidents", wakes["incidents"], now, d.incidents.run_due
        )
        wakes["notify"] = await d.run_due("notify", wakes["notify"], now, d.notify.run_due)
        for action in dispatcher.due(now):
            await apply_action(d.sessions, d.incidents, action)
            d.changed["incidents"] = True
        await d.drain(dispatcher)
        pending = (*wakes.values(), dispatcher.next_due())
        # incidents changed since its run_due: its wake-up may have moved earlier
        if not d.changed["incidents"] and not any(w is not None and w <= now for w in pending):
            return
    raise RuntimeError("demo: timers keep firing at one instant")


async def _pace(now: datetime, target: datetime, speed: float | None) -> None:
    if speed is not None and target > now:
        await asyncio.sleep((target - now).total_seconds() / speed)


class _Progress:
    """One status line on a terminal; a line every 10 % otherwise."""

    def __init__(self, total: int, start: datetime, end: datetime, *, enabled: bool) -> None:
        self.total, self.start, self.end = total, start, end
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._last_decile = -1

    def update(self, delivered: int, now: datetime) -> None:
        if not self.enabled:
            return
        span = max((self.end - self.start).total_seconds(), 1.0)
        pct = min(100.0, 100.0 * (now - self.start).total_seconds() / span)
        text = (f"demo: {now.astimezone(self.start.tzinfo).isoformat(timespec='minutes')}  "
                f"{pct:5.1f} %  {delivered}/{self.total} messages delivered")
        if self.tty:
            print(f"\r{text}", end="", file=sys.stderr, flush=True)
        elif int(pct // 10) > self._last_decile:
            self._last_decile = int(pct // 10)
            print(text, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)
