"""The ingest service: raw topics → normalised, enriched signals (DESIGN sections 1, 3, 4).

Wiring only; the rules live in ``services.ingest.domain`` and the batch semantics in
``services.ingest.pipeline``. Runs in-process in the demo (MemoryBus, ``run_once`` on a
virtual clock; build the settings with ``ingest_poll_timeout_s=0`` so an empty poll does
not wait) and as ``outagedesk serve ingest`` in production (KafkaBus, ``run_forever``).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.topics import TOPOLOGY_CHANGED
from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.base import Bus, Producer
from services.common.bus.watchdog import ProgressWatchdog
from services.common.clock import Clock
from services.common.consumer_loop import BatchConsumer, OffsetStorage
from services.common.health import Readiness
from services.common.metrics import CommonMetrics
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.normalise import SOURCE_TOPICS
from services.ingest.handlers import DEFAULT_TOPICS, TopicNames
from services.ingest.pipeline import IngestMetrics, IngestPipeline
from services.ingest.settings import IngestSettings
from services.ingest.topology_cache import TopologyCache, TopologyLoader

log = structlog.get_logger(__name__)

STALL_AFTER_S = 60.0


class IngestService:
    """Construct, ``await start()``, then ``run_once``/``run_forever``, then ``stop()``."""

    def __init__(
        self,
        settings: IngestSettings,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        load_topology: TopologyLoader | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._bus = bus
        self._sessions = sessions
        self._clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = CommonMetrics.create(self.registry)
        self.ingest_metrics = IngestMetrics.create(self.registry)
        self.topology = TopologyCache(bus, sessions, load_topology or _default_loader)
        self.dedup = DedupWindow(settings.ingest_dedup_window)
        self.readiness = Readiness()
        self._producer: Producer | None = None
        self._consumer: BatchConsumer | None = None
        self.pipeline: IngestPipeline | None = None
        self._watchdog = ProgressWatchdog("ingest", STALL_AFTER_S)
        prefix = settings.ingest_topic_prefix
        self.topics = TopicNames.prefixed(prefix, SOURCE_TOPICS) if prefix else DEFAULT_TOPICS

    async def start(self) -> None:
        """Create topics, load the topology, open the producer and join the group."""
        topics = self.topics
        inputs = topics.physical(SOURCE_TOPICS)
        await self._bus.create_topics([*inputs, topics.signals, topics.dead_letter])
        await self._bus.create_topics([TOPOLOGY_CHANGED])
        await self.topology.start()
        self._producer = await self._bus.producer(client_id="ingest")
        self.pipeline = IngestPipeline(
            self._producer, self.topology, self.dedup, self._clock, self.ingest_metrics, topics
        )
        self._consumer = BatchConsumer(
            self._bus,
            inputs,
            group_id=self.settings.ingest_group_id,
            sessions=self._sessions,
            apply=self.pipeline.apply,
            storage=OffsetStorage.BROKER,
            batch_size=self.settings.consumer_batch_size,
            poll_timeout_s=self.settings.ingest_poll_timeout_s,
            metrics=self.metrics,
            client_id="ingest",
        )
        await self._consumer.start()
        self.readiness.add("consumer", self._consumer.check)
        log.info("ingest started", group=self.settings.ingest_group_id)

    async def run_once(self, max_records: int | None = None) -> int:
        """Refresh the topology if it changed, then consume, produce, store and commit one
        batch; the number of records handled (0 when none were waiting)."""
        await self.topology.refresh()
        return await self._batch_consumer.run_once(max_records)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run batches until ``stop`` is set; wait out database and broker outages (not
        ready meanwhile) and restart a consumer that stalls while lag grows."""
        backoff = Backoff()
        consumer = self._batch_consumer
        while not stop.is_set():
            try:
                processed = await self.run_once()
                if self._watchdog.observe(processed, await consumer.consumer.lag()):
                    log.warning("ingest consumer stalled; restarting it", lag=self._watchdog.lag)
                    await consumer.restart()
                    self._watchdog.restarted()
            except RETRYABLE_ERRORS as exc:
                consumer.ready = False
                self.metrics.consumer_errors.labels(consumer.group_id, type(exc).__name__).inc()
                delay = backoff.next_delay()
                log.warning("ingest batch failed; retrying", error=repr(exc), retry_in_s=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                continue
            consumer.ready = True
            backoff.reset()

    async def stop(self) -> None:
        """Leave the group without committing anything further and close the clients."""
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self.topology.stop()

    async def caught_up(self) -> bool:
        """True once partitions are assigned and nothing in them is left to read."""
        consumer = self._batch_consumer.consumer
        return bool(consumer.assignment()) and await consumer.lag() == 0

    async def ready(self) -> bool:
        return await self.readiness.ready()

    @property
    def _batch_consumer(self) -> BatchConsumer:
        if self._consumer is None:
            raise RuntimeError("IngestService.start() was not called")
        return self._consumer


async def _default_loader(session: AsyncSession) -> Topology:
    from services.common.topology.repository import load_topology

    return await load_topology(session)
