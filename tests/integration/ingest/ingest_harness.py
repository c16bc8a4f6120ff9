"""Helpers shared by the ingest integration tests (not a test module)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.topics import TOPOLOGY_CHANGED
from services.common.bus.base import (
    Bus,
    Consumer,
    OnAssigned,
    OnRevoked,
    OutMessage,
    Producer,
    Record,
    TopicPartition,
)
from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer
from services.ingest.entrypoints.service import IngestService

NOW = datetime(2026, 7, 14, 0, 5, tzinfo=UTC)
OCCURRED = (NOW - timedelta(minutes=1)).isoformat()


class HeldTopology:
    """A topology loader the test can swap the answer of."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.loads = 0

    async def __call__(self, session: AsyncSession) -> Topology:
        self.loads += 1
        return self.topology


class SimulatedCrash(Exception):
    """The process 'dies' between producing a batch and committing its offsets."""


class CrashingConsumer:
    def __init__(self, inner: Consumer, bus: CrashBeforeCommitBus) -> None:
        self._inner = inner
        self._bus = bus
        self.last_batch: list[Record] = []

    async def getmany(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        records = await self._inner.getmany(timeout_s, max_records)
        if records:
            self.last_batch = records
        return records

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        if self._bus.crash_next_commit:
            self._bus.crashed_batch = list(self.last_batch)
            raise SimulatedCrash
        await self._inner.commit(offsets)

    def assignment(self) -> set[TopicPartition]:
        return self._inner.assignment()

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        await self._inner.seek(tp, offset)

    async def lag(self) -> int:
        return await self._inner.lag()

    async def stop(self) -> None:
        await self._inner.stop()


class CrashBeforeCommitBus:
    """Wraps a bus; when armed, the next offset commit raises instead of committing."""

    def __init__(self, inner: Bus) -> None:
        self._inner = inner
        self.crash_next_commit = False
        self.crashed_batch: list[Record] = []

    async def create_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        await self._inner.create_topics(topics, partitions)

    async def producer(self, *, client_id: str = "outagedesk") -> Producer:
        return await self._inner.producer(client_id=client_id)

    async def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        on_assigned: OnAssigned | None = None,
        on_revoked: OnRevoked | None = None,
        client_id: str = "outagedesk",
    ) -> Consumer:
        inner = await self._inner.consumer(
            topics,
            group_id=group_id,
            on_assigned=on_assigned,
            on_revoked=on_revoked,
            client_id=client_id,
        )
        return CrashingConsumer(inner, self)

    async def close(self) -> None:
        await self._inner.close()


async def drain(service: IngestService, *, max_records: int = 500, deadline_s: float = 60) -> int:
    """Run batches until the service has read everything; the records handled."""
    handled = 0
    async with asyncio.timeout(deadline_s):
        while True:
            n = await service.run_once(max_records)
            handled += n
            if n == 0 and await service.caught_up():
                return handled


async def read_topic(bus: Bus, topic: str, group_id: str, deadline_s: float = 60) -> list[Record]:
    """Everything on ``topic`` from the beginning, read in a fresh group."""
    consumer = await bus.consumer([topic], group_id=group_id)
    out: list[Record] = []
    try:
        async with asyncio.timeout(deadline_s):
            while True:
                batch = await consumer.getmany(timeout_s=0.5, max_records=5000)
                out.extend(batch)
                if not batch and consumer.assignment() and await consumer.lag() == 0:
                    return out
    finally:
        await consumer.stop()


def prefix_of(run_id: str) -> str:
    """The run's topic prefix: tests on the shared broker leave DESIGN's topics alone."""
    return f"t{run_id}."


async def publish(
    bus: Bus, messages: Sequence[tuple[str, str | None, bytes]], prefix: str = ""
) -> None:
    """Send (topic, key, value) messages; ``prefix`` goes before every topic name except
    topology.changed.v1, which the service always reads under its own name."""
    producer = await bus.producer(client_id="test-feed")
    try:
        await producer.send(
            [
                OutMessage(
                    t if t == TOPOLOGY_CHANGED else prefix + t, v, None if k is None else k.encode()
                )
                for t, k, v in messages
            ]
        )
    finally:
        await producer.stop()


def value(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def make_topology(run_id: str, version: int = 1, extra_meters: int = 0) -> Topology:
    """Two feeders; meters ``{run_id}-M1..M4`` (plus ``extra_meters`` more on F02)."""
    customers = [
        Customer(f"{run_id}-C{i}", f"{run_id}-M{i}", "T1" if i <= 2 else "T2", "residential")
        for i in range(1, 5 + extra_meters)
    ]
    return Topology.build(
        feeders=[Feeder("F01", "one", "S1", "urban"), Feeder("F02", "two", "S1", "rural")],
        devices=[
            Device(f"{run_id}-F01-BKR", "F01", None, "breaker"),
            Device(f"{run_id}-F02-BKR", "F02", None, "breaker"),
        ],
        transformers=[
            Transformer("T1", f"{run_id}-F01-BKR", 220, 1),
            Transformer("T2", f"{run_id}-F02-BKR", 220, 1),
        ],
        customers=customers,
        version=version,
    )
