"""Apply one consumed batch (DESIGN section 4, at-least-once): produce every signal and
dead letter and wait for the broker's acknowledgements, store the dead letters in the
batch's unit of work; the consumer loop then commits the unit of work and only after it
the offsets to the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.bus.base import Producer, Record
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.ingest.domain.dedup import DedupWindow
from services.ingest.handlers import DEFAULT_TOPICS, NormalisedBatch, TopicNames, normalise_batch
from services.ingest.repository import add_dead_letters
from services.ingest.topology_cache import TopologyCache

# A batch is normalised and handed to the producer in chunks of this many records, so the
# broker stores (and acknowledges) one chunk's signals while the next chunk is normalised:
# on a batch of thousands, waiting for all acknowledgements only after normalising all of
# it left the process idle for a third of the time.
CHUNK = 1000
# Loop turns after handing a chunk over: the send task queues its batches, and aiokafka's
# sender task wakes, drains them and writes the produce requests to the socket.
_YIELDS_PER_CHUNK = 4


@dataclass(frozen=True, slots=True)
class IngestMetrics:
    signals_out: Counter
    dead_letters: Counter  # labels: code
    duplicates: Counter
    topology_version: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        return cls(
            signals_out=Counter(
                "outagedesk_ingest_signals_out", "Signals produced", registry=registry
            ),
            dead_letters=Counter(
                "outagedesk_ingest_dead_letters",
                "Dead letters by error code",
                ["code"],
                registry=registry,
            ),
            duplicates=Counter(
                "outagedesk_ingest_duplicates", "Events dropped as duplicates", registry=registry
            ),
            topology_version=Gauge(
                "outagedesk_ingest_topology_version",
                "Cached topology version",
                registry=registry,
            ),
        )


class IngestPipeline:
    def __init__(
        self,
        producer: Producer,
        topology: TopologyCache,
        dedup: DedupWindow,
        clock: Clock,
        metrics: IngestMetrics | None = None,
        topics: TopicNames = DEFAULT_TOPICS,
    ) -> None:
        self._topics = topics
        self._producer = producer
        self._topology = topology
        self._dedup = dedup
        self._clock = clock
        self._metrics = metrics
        self.signals_out = 0
        self.dead_letters_out = 0
        self.duplicates = 0

    async def apply(self, uow: UnitOfWork, records: Sequence[Record]) -> None:
        """Normalise ``records``; return once every output is acknowledged and the dead
        letters are written to ``uow`` (which the caller commits).

        Chunks are sent in order (the producer keeps the order of its ``send`` calls, so
        one key's messages stay ordered) and all of them must be acknowledged before this
        returns; any failure fails the whole batch, which the consumer loop re-reads."""
        now = self._clock.now()
        locations = self._topology.locations
        sends: list[asyncio.Future[None]] = []
        batches: list[NormalisedBatch] = []
        try:
            for start in range(0, len(records), CHUNK):
                batch = normalise_batch(
                    records[start : start + CHUNK], now, locations, self._dedup, self._topics
                )
                batches.append(batch)
                if batch.messages:
                    sends.append(asyncio.ensure_future(self._producer.send(batch.messages)))
                    for _ in range(_YIELDS_PER_CHUNK):
                        await asyncio.sleep(0)
            for result in await asyncio.gather(*sends, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result
        except BaseException:
            _abandon(sends)
            # The batch will be read again: its event ids must not count as seen.
            self._dedup.rollback()
            raise
        # Acknowledged signals are out; a retry after a later failure may skip them.
        self._dedup.commit()
        await add_dead_letters(uow.session, [d for b in batches for d in b.dead_letters])
        for batch in batches:
            self._count(batch)

    def _count(self, batch: NormalisedBatch) -> None:
        self.signals_out += batch.signals
        self.dead_letters_out += len(batch.dead_letters)
        self.duplicates += batch.duplicates
        if self._metrics is not None:
            self._metrics.signals_out.inc(batch.signals)
            self._metrics.duplicates.inc(batch.duplicates)
            for code, n in batch.dead_by_code.items():
                self._metrics.dead_letters.labels(code).inc(n)
            self._metrics.topology_version.set(self._topology.current.version)


def _abandon(sends: list[asyncio.Future[None]]) -> None:
    """Cancel the sends still running and retrieve the outcome of every one, so none is
    logged as an exception never retrieved; the batch fails as a whole anyway."""
    for send in sends:
        send.cancel()  # a no-op for a finished one
        send.add_done_callback(_retrieve)


def _retrieve(send: asyncio.Future[None]) -> None:
    if not send.cancelled():
        send.exception()
