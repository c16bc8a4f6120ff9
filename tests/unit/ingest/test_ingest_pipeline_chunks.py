"""``IngestPipeline.apply`` on a batch of several chunks: the chunks' sends overlap, yet the
output is the whole batch's, in order, and a failed chunk fails the whole batch (nothing
counted as seen, so the re-read batch yields every signal again)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import orjson
import pytest

from schemas import METER_EVENTS
from services.common.bus.base import BusError, OutMessage, Record
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.enrichment import Locations
from services.ingest.handlers import normalise_batch
from services.ingest.pipeline import CHUNK, IngestPipeline
from services.ingest.topology_cache import TopologyCache

NOW = datetime(2026, 7, 14, 0, 5, tzinfo=UTC)


class RecordingProducer:
    """Keeps every send's messages; the ``fail_on``-th send (1-based) raises once acked
    sends before it have completed, like a broker failing mid-batch."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.sends: list[list[OutMessage]] = []
        self.acked: list[OutMessage] = []
        self._fail_on = fail_on

    async def send(self, messages: Sequence[OutMessage]) -> None:
        self.sends.append(list(messages))
        number = len(self.sends)
        await asyncio.sleep(0)  # a real send waits for the broker
        if number == self._fail_on:
            raise BusError("broker went away")
        self.acked.extend(messages)

    async def stop(self) -> None:
        return None


class FixedTopology:
    """What the pipeline reads of a TopologyCache."""

    def __init__(self, topology: Topology) -> None:
        self.current = topology
        self.locations = Locations(topology)


class NoSession:
    """A unit of work that must not be touched: no batch here has dead letters."""

    session = None


def meter_records(count: int) -> list[Record]:
    meters = ("M000001", "M000002", "M000003")
    out = []
    for i in range(count):
        value = {
            "event_id": f"e-{i}",
            "meter_id": meters[i % 3],
            "type": ("last_gasp", "power_restore")[i % 2],
            "occurred_at": (NOW - timedelta(seconds=i % 300)).isoformat(),
        }
        out.append(Record(METER_EVENTS, 0, i, meters[i % 3].encode(), orjson.dumps(value), 0))
    return out


def pipeline(producer: RecordingProducer, topology: Topology, dedup: DedupWindow) -> IngestPipeline:
    return IngestPipeline(
        producer,
        cast(TopologyCache, FixedTopology(topology)),
        dedup,
        VirtualClock(NOW),
    )


class TestChunkedApply:
    async def test_output_is_the_whole_batch_in_order(self, topology: Topology) -> None:
        records = meter_records(2 * CHUNK + 7)
        producer = RecordingProducer()
        dedup = DedupWindow(10 * CHUNK)

        await pipeline(producer, topology, dedup).apply(cast(UnitOfWork, NoSession()), records)

        expected = normalise_batch(records, NOW, Locations(topology), DedupWindow(10 * CHUNK))
        assert len(producer.sends) == 3
        assert [m for send in producer.sends for m in send] == expected.messages
        assert producer.acked == expected.messages
        assert len(dedup) == len(records)

    async def test_a_failed_chunk_fails_the_batch_and_marks_nothing_seen(
        self, topology: Topology
    ) -> None:
        records = meter_records(2 * CHUNK + 7)
        dedup = DedupWindow(10 * CHUNK)
        failing = RecordingProducer(fail_on=2)

        with pytest.raises(BusError):
            await pipeline(failing, topology, dedup).apply(cast(UnitOfWork, NoSession()), records)

        assert len(dedup) == 0
        retry = RecordingProducer()
        await pipeline(retry, topology, dedup).apply(cast(UnitOfWork, NoSession()), records)
        assert len(retry.acked) == len(records)  # every event is a signal again
