"""The incidents service: grid.signals.v1 → incidents in PostgreSQL → incidents.lifecycle.v1.

Wiring only: the rules live in ``services.incidents.domain``, the unit-of-work handlers in
``services.incidents.handlers`` and ``actions``; voltage monitoring, the SLA clock and
satisfaction impact are hooks (:func:`services.incidents.quality_hooks.install`), and a
second consumer reads ``notify.deliveries.v1`` into first notices. Runs in-process in the
demo (MemoryBus, ``run_once`` / ``run_due`` / ``relay_once`` on a virtual clock; build the
settings with ``incidents_poll_timeout_s=0``) and as ``outagedesk serve incidents``
(``run_forever``).

Processing watermark: ``run_forever``'s timer loop fires timers only up to
:meth:`IncidentsService.timer_horizon` — the clock, held back to the instant the signals
consumer last knew it had applied everything in Kafka (``BatchConsumer.caught_up_at``) — so
a timer due at T (the nested check above all) judges on every signal that had arrived by T,
even while a storm's backlog drains. ``incidents_timer_max_hold_s`` bounds the hold; the
gauge ``outagedesk_incidents_timer_hold_seconds`` shows it. ``run_due`` (the demo's step)
fires on the clock alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from prometheus_client import Gauge
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.parsing import parse_topology_changed
from schemas.topics import TOPOLOGY_CHANGED
from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.base import Bus, Consumer, Producer, Record, TopicPartition
from services.common.bus.watchdog import ProgressWatchdog
from services.common.clock import Clock
from services.common.consumer_loop import BatchConsumer, OffsetStorage
from services.common.db import UnitOfWork
from services.common.health import Readiness
from services.common.outbox import OutboxRelay
from services.common.policy import load_policy
from services.common.topology.model import Topology
from services.incidents.domain.policy_rules import correlation_rules
from services.incidents.feeder_cache import FeederStateCache
from services.incidents.handlers import HandlerContext, IncidentTopics, apply_signals, run_timers
from services.incidents.quality_hooks import deliveries_consumer, install
from services.incidents.settings import IncidentsSettings
from services.incidents.timer_watch import TimerWatch

log = structlog.get_logger(__name__)

SCHEMA = "incidents"
# No progress this long while records wait = a stalled client (aiokafka after a broker restart).
STALL_AFTER_S = 60.0

# On the default registry, like the watchdog's restarts (one incidents service per process).
TIMER_HOLD = Gauge(
    "outagedesk_incidents_timer_hold_seconds",
    "How far the incidents timer horizon is behind the clock: timers due later wait for the "
    "signals consumer to apply what was in Kafka at their due time",
)


class IncidentsService:
    """Construct, ``await start()``, then ``run_once``/``run_due``/``relay_once`` or
    ``run_forever``, then ``stop()``. ``topology=None`` loads it from the database and
    follows ``topology.changed.v1``; a given topology is used as is."""

    def __init__(
        self,
        settings: IncidentsSettings,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        topology: Topology | None = None,
        *,
        stall_after_s: float = STALL_AFTER_S,
        hold_gauge: Gauge = TIMER_HOLD,
        sole_writer: bool = False,
    ) -> None:
        """``sole_writer``: no other process writes the incidents schema (the demo); then
        :meth:`run_due` skips runs that cannot fire anything (:mod:`timer_watch`)."""
        self.settings = settings
        self._bus = bus
        self._sessions = sessions
        self._clock = clock
        self._static_topology = topology
        policy = load_policy(settings.policy_file)
        self.rules = correlation_rules(policy)
        prefix = settings.incidents_topic_prefix
        self.topics = IncidentTopics.prefixed(prefix) if prefix else IncidentTopics()
        self.cache = FeederStateCache(topology or Topology.build([], [], [], []), self.rules)
        self.ctx = HandlerContext(self.cache, clock, self.topics)
        self.quality = install(
            self.ctx, policy, settings.timezone,
            timedelta(seconds=settings.incidents_impact_refresh_s),
        )  # fmt: skip
        self.readiness = Readiness()
        self._consumer: BatchConsumer | None = None
        self._deliveries: BatchConsumer | None = None
        self._producer: Producer | None = None
        self._relay: OutboxRelay | None = None
        self._topology_consumer: Consumer | None = None
        self._timer_wake = asyncio.Event()
        self.next_wake: datetime | None = None
        self._max_hold = timedelta(seconds=settings.incidents_timer_max_hold_s)
        self._hold_gauge = hold_gauge
        self._valve_open = False  # the last horizon was set by the safety valve
        self._timer_watch = TimerWatch(sessions.kw["bind"]) if sole_writer else None
        # DESIGN 4: a watchdog per consumer; restarts count in the shared watchdog metric.
        self.watchdog = ProgressWatchdog("incidents", stall_after_s)
        self.deliveries_watchdog = ProgressWatchdog("incidents-deliveries", stall_after_s)

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Create topics, load the topology, open the producer and join the group."""
        t = self.topics
        await self._bus.create_topics(
            [t.signals, t.lifecycle, t.dead_letter, t.deliveries, TOPOLOGY_CHANGED]
        )
        if self._static_topology is None:
            self._topology_consumer = await self._bus.consumer(
                [TOPOLOGY_CHANGED],
                group_id=f"incidents-topology-{uuid.uuid4().hex[:12]}",
                client_id="incidents-topology",
            )
            await self._load_topology()
        self._producer = await self._bus.producer(client_id="incidents")
        self._relay = OutboxRelay(self._sessions, self._producer, schema=SCHEMA, clock=self._clock)
        self._consumer = BatchConsumer(
            self._bus,
            [t.signals],
            group_id=self.settings.incidents_group_id,
            sessions=self._sessions,
            apply=self._apply,
            storage=OffsetStorage.DATABASE,
            schema=SCHEMA,
            batch_size=self.settings.consumer_batch_size,
            poll_timeout_s=self.settings.incidents_poll_timeout_s,
            on_revoked=self._on_revoked,
            client_id="incidents",
            clock=self._clock,  # keeps the watermark the timer loop waits for
        )
        await self._consumer.start()
        self.ctx.owned_partitions = self._owned_partitions
        self._deliveries = deliveries_consumer(
            self._bus,
            self._sessions,
            self.ctx,
            topic=t.deliveries,
            group_id=f"{self.settings.incidents_group_id}-deliveries",
            batch_size=self.settings.consumer_batch_size,
            poll_timeout_s=self.settings.incidents_poll_timeout_s,
            watchdog=self.deliveries_watchdog,
            impact=self.quality.impact,
        )
        await self._deliveries.start()
        self.readiness.add("consumer", self._consumer.check)
        self.readiness.add("deliveries", self._deliveries.check)
        log.info("incidents started", group=self.settings.incidents_group_id)

    async def stop(self) -> None:
        """Leave the group without committing anything further and close the clients."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
        if self._deliveries is not None:
            deliveries, self._deliveries = self._deliveries, None
            await deliveries.stop()
        if self._topology_consumer is not None:
            tc, self._topology_consumer = self._topology_consumer, None
            await tc.stop()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    # --- one step each (the demo drives these on a virtual clock) ------------------------
    async def run_once(self, max_records: int | None = None) -> int:
        """Refresh the topology if it changed, then consume, apply and commit one batch of
        signals and one of deliveries (offsets stored in the same transactions); the number
        of records."""
        n = await self._run_signals(max_records)
        if self._deliveries is not None:
            n += await self._deliveries.run_once(max_records)
        return n

    async def _run_signals(self, max_records: int | None = None) -> int:
        await self.refresh_topology()
        consumer = self._batch_consumer
        n = await consumer.run_once(max_records)
        caught = consumer.caught_up_at
        if n or (caught is not None and self.next_wake is not None and caught >= self.next_wake):
            # new evidence, or the watermark passed a held timer: the timer loop looks again
            self._timer_wake.set()
            if self._relay is not None:
                self._relay.wake()
        return n

    async def run_due(self) -> datetime | None:
        """Fire the timers due at ``clock.now()``; the next wake-up (None: nothing due)."""
        now, watch = self._clock.now(), self._timer_watch
        if watch is not None:
            if watch.idle(now, self.next_wake, self.quality.impact.next_wake_at()):
                return self.next_wake
            watch.begin_run()
        try:
            async with UnitOfWork(self._sessions) as uow:
                wake = await run_timers(uow, now, self.ctx)
                await uow.commit()
        except BaseException:
            if watch is not None:
                watch.written = True  # a failed run fired nothing: the next one runs whole
            raise
        self.next_wake = wake
        if self._relay is not None:
            self._relay.wake()
        return wake

    def timer_horizon(self) -> datetime:
        """The instant timers may fire up to: ``clock.now()`` held back to the signals
        consumer's watermark (a timer due at T waits until everything in Kafka at T is
        applied), but never more than ``incidents_timer_max_hold_s`` behind the clock."""
        now = self._clock.now()
        floor = now - self._max_hold
        caught = self._batch_consumer.caught_up_at
        held = floor if caught is None else min(now, caught)
        return max(held, floor)

    async def run_due_caught_up(self) -> datetime | None:
        """Fire the timers due at :meth:`timer_horizon` (``run_forever``'s timer step); the
        next wake-up, which may be a held timer at or before ``clock.now()``."""
        now = self._clock.now()
        horizon = self.timer_horizon()
        self._hold_gauge.set((now - horizon).total_seconds())
        valve = self._max_hold > timedelta(0) and horizon == now - self._max_hold < now
        if valve and not self._valve_open:
            log.warning(
                "signals consumer still behind; timers fire past the maximum hold",
                max_hold_s=self._max_hold.total_seconds(),
                caught_up_at=self._batch_consumer.caught_up_at,
            )
        self._valve_open = valve
        async with UnitOfWork(self._sessions) as uow:
            wake = await run_timers(uow, horizon, self.ctx)
            await uow.commit()
        self.next_wake = wake
        if self._relay is not None:
            self._relay.wake()
        return wake

    async def relay_once(self) -> int:
        """Publish one batch of outbox rows; the number published."""
        if self._relay is None:
            raise RuntimeError("IncidentsService.start() was not called")
        return await self._relay.run_once()

    async def refresh_topology(self) -> bool:
        """Reload the topology when a newer version was announced; True if reloaded."""
        if self._topology_consumer is None:
            return False
        stale = False
        for record in await self._topology_consumer.getmany(timeout_s=0, max_records=1000):
            try:
                stale = stale or parse_topology_changed(record.value).version > (
                    self.cache.topology.version
                )
            except ValidationError:
                stale = True
        if stale:
            await self._load_topology()
        return stale

    # --- forever -----------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event) -> None:
        """Consumer, timer and relay loops until ``stop`` is set; outages are waited out."""
        assert self._relay is not None
        assert self._deliveries is not None
        tasks = [
            asyncio.create_task(self._consume_forever(stop), name="incidents-consumer"),
            asyncio.create_task(self._deliveries.run_forever(stop), name="incidents-deliveries"),
            asyncio.create_task(self._timers_forever(stop), name="incidents-timers"),
            asyncio.create_task(self._relay.run_forever(stop), name="incidents-relay"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a loop that died of a non-retryable error stops the service
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume_forever(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        consumer = self._batch_consumer
        while not stop.is_set():
            try:
                processed = await self._run_signals()
                await self._watch(consumer, processed)
            except RETRYABLE_ERRORS as exc:
                consumer.ready = False
                delay = backoff.next_delay()
                log.warning("incidents batch failed; retrying", error=repr(exc), retry_in_s=delay)
                await _wait(stop, delay)
                continue
            consumer.ready = True
            backoff.reset()

    async def _watch(self, consumer: BatchConsumer, processed: int) -> None:
        # Lag is a broker round trip: ask only after an empty poll, the stall symptom.
        lag = await consumer.consumer.lag() if processed == 0 else 0
        if self.watchdog.observe(processed, lag):
            log.warning(
                "incidents consumer stalled; restarting it",
                lag=lag,
                stalled_s=round(self.watchdog.stalled_for(), 1),
            )
            await consumer.restart()
            self.watchdog.restarted()

    async def _timers_forever(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        poll = timedelta(seconds=self.settings.incidents_timer_poll_s)
        while not stop.is_set():
            try:
                wake = await self.run_due_caught_up()
            except RETRYABLE_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("incidents timers failed; retrying", error=repr(exc), retry_in_s=delay)
                await _wait(stop, delay)
                continue
            backoff.reset()
            now = self._clock.now()
            # A held timer (due, not yet fired) waits for the consumer's wake or the poll.
            until = min(wake, now + poll) if wake is not None and wake > now else now + poll
            self._timer_wake.clear()
            sleeper = asyncio.ensure_future(self._clock.sleep_until(until))
            waker = asyncio.ensure_future(self._timer_wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([sleeper, waker, stopper], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for f in (sleeper, waker, stopper):
                    f.cancel()

    # --- internals ---------------------------------------------------------------------
    async def _apply(self, uow: UnitOfWork, records: Sequence[Record]) -> None:
        await apply_signals(uow, records, self.ctx)

    async def _on_revoked(self, tps: set[TopicPartition]) -> None:
        async with self.cache.lock:
            self.cache.evict_partitions({tp.partition for tp in tps})
            # monitors of transformers on those feeders may be advanced by another consumer
            self.quality.watch.forget()
        if self._timer_watch is not None:  # the wake-up depends on the partitions held
            self._timer_watch.written = True

    async def load_topology(self) -> None:
        """Load the stored topology into the cache (``start`` does it; an API-only process,
        which never starts the consumers, calls it once)."""
        await self._load_topology()

    async def _load_topology(self) -> None:
        from services.common.topology.repository import load_topology

        async with UnitOfWork(self._sessions) as uow:
            topology = await load_topology(uow.session)
        async with self.cache.lock:
            self.cache.replace_topology(topology)
        log.info("topology loaded", version=topology.version, feeders=len(topology.feeders))

    def _owned_partitions(self) -> set[int] | None:
        """The signals partitions the consumer holds (None while it holds none)."""
        if self._consumer is None:
            return None
        try:
            held = self._consumer.consumer.assignment()
        except RuntimeError:  # between a failed restart and the next start
            return None
        return {tp.partition for tp in held if tp.topic == self.topics.signals} or None

    @property
    def _batch_consumer(self) -> BatchConsumer:
        if self._consumer is None:
            raise RuntimeError("IncidentsService.start() was not called")
        return self._consumer


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
