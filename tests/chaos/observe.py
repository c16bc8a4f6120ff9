"""Watching a stack run: progress series per service, stalls, and reading whole topics."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from replay import load_metadata
from stack import count

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

    def stalls(self, final: int, at_least_s: float, alive: Callable[[float, float], bool]) -> list[
        tuple[float, float]
    ]:  # fmt: skip
        """Intervals of at least ``at_least_s`` with no progress below ``final`` while the
        process ran throughout (``alive(t0, t1)``)."""
        out: list[tuple[float, float]] = []
        since: float | None = None
        value: int | None = None
        for t, v in self.points:
            if v is None:
                continue
            if value is None or v != value:
                start = since if since is not None and value is not None else t
                behind = value is not None and value < final
                if behind and t - start >= at_least_s and alive(start, t):
                    out.append((start, t))
                since, value = t, v
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
