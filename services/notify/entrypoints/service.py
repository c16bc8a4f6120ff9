"""The notify service: lifecycle events → jobs → messages → delivery outcomes (DESIGN 4, 10).

Wiring only. Three loops share one database: the consumer (``run_once``: lifecycle batch →
jobs, in the transaction that stores the offsets), the sender (``run_due``: due jobs →
channels) and the outbox relay (``relay_once``: delivery outcomes → ``notify.deliveries.v1``).
The demo drives them on a virtual clock; ``run_forever`` runs them on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import structlog
from fastapi import APIRouter
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.topics import CUSTOMER_REPORTS, DEAD_LETTER, DELIVERIES, LIFECYCLE
from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.base import Bus, OutMessage, Producer, Record
from services.common.bus.watchdog import ProgressWatchdog
from services.common.clock import Clock
from services.common.consumer_loop import BatchConsumer, OffsetStorage
from services.common.db import UnitOfWork
from services.common.health import Readiness
from services.common.metrics import CommonMetrics
from services.common.outbox import OutboxRelay
from services.common.policy import Policy, load_policy
from services.common.topology.model import Topology
from services.notify import orm
from services.notify.channels.base import Channel
from services.notify.domain.decisions import NotifyPolicy
from services.notify.domain.retry import RetryPolicy
from services.notify.domain.token_bucket import TokenBucket
from services.notify.entrypoints.inbound import ReplyContext, make_inbound_router
from services.notify.handlers import LifecycleContext, StateCache, apply_lifecycle
from services.notify.indexed_state import IndexedNotifyState
from services.notify.outcomes import BeforeCommit
from services.notify.queue_repository import QueueRepository
from services.notify.sender import RECHECKED_STAGES, Sender, SenderConfig
from services.notify.sender_view import round_state
from services.notify.service_settings import NotifyServiceSettings
from services.notify.topology_cache import TopologyCache

log = structlog.get_logger(__name__)
SCHEMA = "notify"
# No progress this long while records wait = a stalled client (aiokafka after a broker restart).
STALL_AFTER_S = 60.0
# Rows (jobs and interruptions) of kept decision state before it is dropped and read back
# as needed: about 0.2 GB (a 200,000-customer storm keeps 350,000 rows in 70 MB).
KEPT_ROWS = 1_000_000
SENDER_RETRYABLE: tuple[type[BaseException], ...] = (*RETRYABLE_ERRORS, BaseExceptionGroup)


def notify_policy(policy: Policy, settings: NotifyServiceSettings) -> NotifyPolicy:
    """The decision rules from the policy file (survey rate: the settings, if given)."""
    n = policy.notifications
    rate = settings.survey_rate if "survey_rate" in settings.model_fields_set else None
    return NotifyPolicy(
        momentary_threshold=timedelta(seconds=n.momentary_threshold_s),
        etr_change_threshold=timedelta(minutes=n.etr_changed_min),
        planned_notice_days=tuple(n.planned_notice_days),
        survey_rate=rate if rate is not None else n.survey_sample_rate,
    )


def channel_rates(
    policy: Policy, settings: NotifyServiceSettings
) -> dict[str, tuple[float, float]]:
    """channel → (rate, burst): the settings when set explicitly, else the policy file."""
    if "channel_rates" in settings.model_fields_set:
        return dict(settings.channel_rates)
    return {c: (b.rate_per_s, float(b.burst)) for c, b in policy.notifications.rate_limits.items()}


class NotifyService:
    """Construct, ``await start()``, drive (``run_once``, ``run_due``, ``relay_once`` or
    ``run_forever``), then ``await stop()``. ``topology``: a fixed one (tests, demo) or
    None to load it from the database and follow ``topology.changed.v1``."""

    def __init__(
        self,
        settings: NotifyServiceSettings,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        topology: Topology | None,
        channels: Mapping[str, Channel],
        *,
        policy: Policy | None = None,
        operators: Channel | None = None,
        registry: CollectorRegistry | None = None,
        before_commit: BeforeCommit | None = None,
        stall_after_s: float = STALL_AFTER_S,
        sole_writer: bool = False,
    ) -> None:
        """``sole_writer``: no other process writes the notify schema (the demo, or
        ``notify_single_replica``); the lifecycle handler then keeps its decision state
        between batches (up to ``KEPT_ROWS``) and the sender its customers' last messages."""
        self.settings = settings
        self._cache = StateCache() if sole_writer else None
        self._bus, self._sessions, self._clock = bus, sessions, clock
        policy = policy or load_policy(settings.policy_file)
        self.policy = notify_policy(policy, settings)
        n = policy.notifications
        retry = RetryPolicy(
            initial=timedelta(seconds=n.retry.initial_s), maximum=timedelta(seconds=n.retry.max_s),
            factor=n.retry.multiplier, max_attempts=n.retry.max_attempts,
        )  # fmt: skip
        self.buckets = {
            c: TokenBucket(rate, burst, clock)
            for c, (rate, burst) in channel_rates(policy, settings).items()
        }
        self.topology = TopologyCache(bus, sessions, fixed=topology)
        url = settings.notify_operators_webhook_url
        self.sender = Sender(
            sessions, clock, channels, lambda: self.topology.current, buckets=self.buckets,
            policy=self.policy, retry=retry,
            config=SenderConfig(
                tz=ZoneInfo(settings.timezone), batch_size=settings.notify_sender_batch,
                concurrency=settings.notify_sender_concurrency,
                lease=timedelta(seconds=settings.notify_lease_s),
                throttle=timedelta(minutes=n.throttle_min),
                crew_on_site_opt_in_default=n.crew_on_site_opt_in_default,
                round_s=settings.notify_sender_round_s,
                pipeline=settings.notify_sender_pipeline,
            ),
            operators=(operators, url) if operators is not None and url else None,
            before_commit=before_commit, on_committed=self._wake_relay,
            on_cancelled=self._cache.cancelled if self._cache is not None else None,
            on_sent=self._cache.sent if self._cache is not None else None,
            sole_writer=sole_writer,
            kept_state=self._kept_state if sole_writer else None,
        )  # fmt: skip
        self._ctx = LifecycleContext(self.policy, clock, lambda: self.topology.current)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = CommonMetrics.create(self.registry)
        self.jobs_created = 0
        self._gauges()
        self.readiness = Readiness()
        self._producer: Producer | None = None
        self._consumer: BatchConsumer | None = None
        self._relay: OutboxRelay | None = None
        self._jobs_waiting = asyncio.Event()
        # DESIGN 4: run_forever restarts the consumer when it stalls (counted in /metrics).
        self.watchdog = ProgressWatchdog("notify", stall_after_s)

    def _gauges(self) -> None:
        for name, doc, fn in (
            ("outagedesk_notify_jobs_created", "Notification jobs created",
             lambda: self.jobs_created),
            ("outagedesk_notify_messages_sent", "Messages accepted by a gateway",
             lambda: self.sender.sent),
            ("outagedesk_notify_jobs_reclaimed", "Jobs re-sent after a sender's lease ended",
             lambda: self.sender.reclaimed),
        ):  # fmt: skip
            Gauge(name, doc, registry=self.registry).set_function(fn)

    async def start(self) -> None:
        """Create topics, load the topology, open the producer and join the group."""
        await self._bus.create_topics([LIFECYCLE, DELIVERIES, CUSTOMER_REPORTS, DEAD_LETTER])
        await self.topology.start()
        self._producer = await self._bus.producer(client_id="notify")
        self._relay = OutboxRelay(
            self._sessions, self._producer, schema=SCHEMA, clock=self._clock, metrics=self.metrics
        )
        self._consumer = BatchConsumer(
            self._bus, [LIFECYCLE], group_id=self.settings.notify_group_id,
            sessions=self._sessions, apply=self._apply, storage=OffsetStorage.DATABASE,
            schema=SCHEMA, batch_size=self.settings.consumer_batch_size,
            poll_timeout_s=self.settings.notify_poll_timeout_s, metrics=self.metrics,
            client_id="notify", watchdog=self.watchdog,
            on_rollback=self._cache.clear if self._cache is not None else None,
        )  # fmt: skip
        await self._consumer.start()
        if self._cache is not None and await self._schema_empty():
            self._cache.whole = True  # everything stored from here on passes through it
        self.readiness.add("consumer", self._consumer.check)
        self.readiness.add("relay", partial(_flag, lambda: self._relay is not None
                                            and self._relay.ready))  # fmt: skip
        log.info("notify started", group=self.settings.notify_group_id)

    async def _schema_empty(self) -> bool:
        """No notify state stored yet (a kept state then holds all there is)."""
        async with UnitOfWork(self._sessions) as uow:
            for table in (orm.incidents, orm.interruptions, orm.jobs):
                if await uow.session.scalar(select(literal(1)).select_from(table).limit(1)):
                    return False
        return True

    def _kept_state(
        self, seeds: Sequence[str], customers: Sequence[str], budget: int
    ) -> IndexedNotifyState | None:
        if self._cache is None:
            return None
        return round_state(self._cache, seeds, customers, budget=budget,
                           job_stages=RECHECKED_STAGES)  # fmt: skip

    async def _apply(self, uow: UnitOfWork, records: Sequence[Record]) -> None:
        result = await apply_lifecycle(uow, records, self._ctx, self._cache)
        if self._cache is not None and self._cache.size > KEPT_ROWS:
            log.info("kept decision state dropped (read again as needed)", rows=self._cache.size)
            self._cache.clear()
        self.jobs_created += len(result.jobs)
        if result.jobs:
            self.sender.jobs_added(min(spec.due_at for spec in result.jobs))
        if result.jobs:
            self._jobs_waiting.set()

    async def run_once(self, max_records: int | None = None) -> int:
        """Apply one batch of lifecycle events; the number of records applied."""
        await self.topology.refresh()
        return await self._batch_consumer.run_once(max_records)

    async def run_due(self, *, drain: bool = True) -> datetime | None:
        """Send what is due at the clock's now; the next wake-up (None: nothing queued).
        ``drain=False``: a long backlog's rounds may still be sending when it returns
        (the wall-clock loops); see :meth:`Sender.run_due`."""
        return await self.sender.run_due(drain=drain)

    async def relay_once(self) -> int:
        """Publish queued delivery outcomes (and dead letters); the number published."""
        if self._relay is None:
            raise RuntimeError("NotifyService.start() was not called")
        return await self._relay.run_once()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Consumer, sender and relay until ``stop``; each waits out outages by itself."""
        assert self._relay is not None
        # The consumer commits batches while the sender runs.
        self.sender.share_queue()
        await asyncio.gather(
            self._batch_consumer.run_forever(stop),
            self._relay.run_forever(stop),
            self._sender_loop(stop),
        )

    async def _sender_loop(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        idle = self.settings.notify_idle_poll_s
        while not stop.is_set():
            try:
                await self.topology.refresh()
                self._jobs_waiting.clear()
                nxt = await self.run_due(drain=False)
            except SENDER_RETRYABLE as exc:
                # a round's outcome commit failing arrives as a group: retry if every
                # error in it is one a database or broker outage causes
                if isinstance(exc, BaseExceptionGroup) and exc.split(RETRYABLE_ERRORS)[1]:
                    raise
                delay = backoff.next_delay()
                log.warning("sender round failed; retrying", error=repr(exc), retry_in_s=delay)
                await _wait_any(stop, self._jobs_waiting, delay)
                continue
            backoff.reset()
            wait = idle
            if nxt is not None:
                wait = min(idle, max(0.0, (nxt - self._clock.now()).total_seconds()))
            await _wait_any(stop, self._jobs_waiting, wait)

    def _wake_relay(self) -> None:
        if self._relay is not None:
            self._relay.wake()

    async def stop(self) -> None:
        """Finish the sender's rounds in flight, leave the group and close the producer
        (channels belong to the caller)."""
        try:
            await self.sender.drain()
        except Exception as exc:  # noqa: BLE001 - stopping anyway; the leases re-send them
            log.warning("sender rounds failed while stopping", error=repr(exc))
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await self.topology.stop()

    def inbound_router(self) -> APIRouter:
        """``POST /inbound/sms``: replies → ``grid.customer-reports.v1`` via the bus."""
        return make_inbound_router(self._publish, self.lookup_phone)

    async def _publish(self, topic: str, key: str, value: dict[str, Any]) -> None:
        if self._producer is None:
            raise RuntimeError("NotifyService.start() was not called")
        await self._producer.send([OutMessage(topic, orjson.dumps(value), key.encode())])

    async def lookup_phone(self, phone: str) -> ReplyContext | None:
        """The customer with this phone and what we last told them."""
        customer_id = self.topology.customer_by_phone(phone)
        if customer_id is None:
            return None
        async with UnitOfWork(self._sessions) as uow:
            last = (await QueueRepository(uow.session).last_sent([customer_id])).get(customer_id)
        if last is None:
            return ReplyContext(customer_id)
        return ReplyContext(customer_id, last.stage, last.incident_id)

    @property
    def _batch_consumer(self) -> BatchConsumer:
        if self._consumer is None:
            raise RuntimeError("NotifyService.start() was not called")
        return self._consumer


async def _flag(read: Any) -> bool:
    return bool(read())


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
