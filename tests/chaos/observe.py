"""Watching a stack run: progress series per service, stalls, and reading whole topics."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from replay import load_metadata
from stack import count, fetch

Probe = Callable[[], Awaitable[int]]


@dataclass
class Series:
    """(time.time(), value) samples of one progress counter; None while unreadable."""

    name: str
    points: list[tuple[float, int | None]] = field(default_factory=list)

    def last(self) -> int | None:
        for _, v in reversed(self.points):
            if v is not None:
                return v
        return None

    def stalls(self, lag: Series, at_least_s: float, alive: Callable[[float, float], bool]) -> list[
        tuple[float, float]
    ]:  # fmt: skip
        """Intervals of at least ``at_least_s`` in which this position did not move although
        ``lag`` (sampled on the same ticks) stayed above zero, while the process ran
        throughout (``alive(t0, t1)``): what the watchdogs call a stall. A quiet spell with
        nothing to read (the storm's lull before the timers fire) is no stall."""
        out: list[tuple[float, float]] = []
        start: float | None = None  # since when nothing moved while records waited
        value: int | None = None
        last = 0.0

        def close() -> None:
            if start is not None and last - start >= at_least_s and alive(start, last):
                out.append((start, last))

        for (t, v), (_, behind) in zip(self.points, lag.points, strict=False):
            if v is None or behind is None:
                continue  # unreadable (a server restarting): no evidence either way
            if v != value or behind <= 0:
                close()
                start, value = None, v
            if behind > 0 and start is None:
                start = t
            last = t
        close()
        return out


class Monitor:
    """Samples the probes every ``period_s`` until stopped."""

    def __init__(self, probes: dict[str, Probe], period_s: float = 1.0,
                 tick: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.series = {name: Series(name) for name in probes}
        self._probes = probes
        self._period = period_s
        self._tick = tick
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            if self._tick is not None:
                self._tick()
            for name, probe in self._probes.items():
                try:
                    async with asyncio.timeout(5):
                        value: int | None = await probe()
                except Exception:  # noqa: BLE001 - a server being restarted
                    value = None
                self.series[name].points.append((time.time(), value))
            await asyncio.sleep(self._period)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def table_probe(url: str, table: str) -> Probe:
    async def probe() -> int:
        return await count(url, table)

    return probe


def db_offsets_probe(url: str, schema: str, group: str, topic: str) -> Probe:
    """Sum of the offsets a database-offset consumer stored for ``topic`` (its position)."""

    async def probe() -> int:
        query = (f"SELECT coalesce(sum(next_offset), 0) FROM {schema}.consumer_offsets"  # noqa: S608
                 f" WHERE group_id = '{group}' AND topic = '{topic}'")  # fmt: skip
        rows = await fetch(url, query)
        return int(rows[0][0])

    return probe


def broker_offsets_probe(bootstrap: str, group: str, topics: Sequence[str]) -> Probe:
    """Sum of the offsets ``group`` committed to the broker for ``topics`` (its position)."""

    async def probe() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                    enable_auto_commit=False, request_timeout_ms=4000)  # fmt: skip
        await consumer.start()
        try:
            total = 0
            for topic in topics:
                await load_metadata(consumer, topic)
                for p in sorted(consumer.partitions_for_topic(topic) or ()):
                    total += await consumer.committed(TopicPartition(topic, p)) or 0
            return total
        finally:
            await consumer.stop()

    return probe


def lag_probe(bootstrap: str, topics: Sequence[str], position: Probe) -> Probe:
    """Records waiting: the end offsets of ``topics`` minus the consumer's ``position``."""

    async def probe() -> int:
        ends = 0
        for topic in topics:
            ends += sum((await end_offsets(bootstrap, topic)).values())
        return ends - await position()

    return probe


def topic_end_probe(bootstrap: str, topic: str) -> Probe:
    """Sum of the end offsets of ``topic`` (a fresh client per call: the broker restarts)."""

    async def probe() -> int:
        return sum((await end_offsets(bootstrap, topic)).values())

    return probe


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=4000)
    await consumer.start()
    try:
        await load_metadata(consumer, topic)
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
        return offsets
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[bytes]:
    """Every value on ``topic`` (all partitions, from the start to the current end)."""
    ends = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    out: list[bytes] = []
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        deadline = time.monotonic() + timeout_s
        done = {tp for tp, end in ends.items() if end == 0}
        while len(done) < len(ends):
            assert time.monotonic() < deadline, f"reading {topic} timed out"
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                out.extend(r.value for r in records if r.value is not None)
                if records and records[-1].offset + 1 >= ends[tp]:
                    done.add(tp)
    finally:
        await consumer.stop()
    return out
