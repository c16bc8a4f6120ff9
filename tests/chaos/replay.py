"""Pace scenario lines onto a broker over a fixed wall-clock span, with hooks at chosen
fractions of the lines sent (where the chaos test kills and restarts things).

The storm's lines carry event times just ahead of the wall clock; the span of the replay
is unrelated to them, so delivery order is the scenario's and pacing is by line index.
Acknowledged send times per event id are kept (the benchmark's latency reference).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

Hook = Callable[[], Awaitable[None]]
BATCH = 200


def encode(line: dict[str, Any], prefix: str = "") -> tuple[str, bytes, bytes | None]:
    """(topic, value, key) of one scenario line."""
    value = line["raw"].encode() if "raw" in line else orjson.dumps(line["value"])
    key = line.get("key")
    return prefix + line["topic"], value, key.encode() if key is not None else None


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
        request_timeout_ms=15_000, max_batch_size=256 * 1024,
    )  # fmt: skip
    await producer.start()
    return producer


async def replay(
    lines: Sequence[dict[str, Any]],
    bootstrap: str,
    *,
    span_s: float,
    prefix: str = "",
    hooks: Sequence[tuple[float, Hook]] = (),
    on_progress: Callable[[float], None] | None = None,
) -> dict[str, float]:
    """Send ``lines`` in order, spread evenly over ``span_s`` seconds (0: at once); run each
    hook (awaited, between batches) once that fraction of the lines is sent. Returns event
    id → time.time() of its acknowledgement (raw lines without an event id are omitted).

    A hook may restart the broker: the producer is recreated after every hook, so no send
    is in flight across it and no line is sent twice."""
    pending_hooks = sorted(hooks, key=lambda h: h[0])
    acked: dict[str, float] = {}
    producer = await _producer(bootstrap)
    started = time.monotonic()
    n = len(lines)
    i = 0
    try:
        while i < n:
            while pending_hooks and pending_hooks[0][0] <= i / n:
                _, hook = pending_hooks.pop(0)
                await producer.stop()
                await hook()
                producer = await _producer(bootstrap)
            due = started + span_s * i / n
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            elapsed = time.monotonic() - started
            due_now = n if span_s <= 0 else int(elapsed / span_s * n) + 1
            upto = min(n, i + BATCH, max(i + 1, due_now))
            upto = min(upto, max(i + 1, _next_hook_index(pending_hooks, n)))
            futures = []
            for line in lines[i:upto]:
                topic, value, key = encode(line, prefix)
                futures.append(await producer.send(topic, value, key=key))
            await asyncio.gather(*futures)
            now = time.time()
            for line in lines[i:upto]:
                event_id = line.get("value", {}).get("event_id") if "value" in line else None
                if event_id is not None:
                    acked.setdefault(event_id, now)
            i = upto
            if on_progress is not None:
                on_progress(i / n)
        for _, hook in pending_hooks:
            await producer.stop()
            await hook()
            producer = await _producer(bootstrap)
    finally:
        await producer.stop()
    return acked


def _next_hook_index(hooks: Sequence[tuple[float, Hook]], n: int) -> int:
    return math.ceil(hooks[0][0] * n) if hooks else n


async def load_metadata(consumer: AIOKafkaConsumer, topic: str) -> None:
    """Make ``consumer.partitions_for_topic(topic)`` answer (a consumer that subscribed to
    nothing knows no topic's partitions)."""
    consumer._client.add_topic(topic)  # noqa: SLF001 - aiokafka has no public call for it
    await consumer._client.force_metadata_update()  # noqa: SLF001


async def mirror(
    source: str, target: str, topic: str, stop: asyncio.Event, *, target_topic: str | None = None
) -> int:
    """Copy ``topic`` from broker ``source`` to broker ``target`` partition by partition, in
    order, until ``stop`` is set and the copy is caught up; the number of records copied.

    Survives restarts of the source broker: it resumes after the last record it copied."""
    producer = await _producer(target)
    copied: dict[int, int] = {}  # partition → next source offset
    total = 0
    try:
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=source, enable_auto_commit=False,
                                        request_timeout_ms=10_000)  # fmt: skip
            try:
                await consumer.start()
                await load_metadata(consumer, topic)
                parts = sorted(consumer.partitions_for_topic(topic) or ())
                if not parts:
                    raise RuntimeError(f"{topic} has no partitions yet")
                tps = [TopicPartition(topic, p) for p in parts]
                consumer.assign(tps)
                for tp in tps:
                    consumer.seek(tp, copied.get(tp.partition, 0))
                while True:
                    batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                    futures = []
                    for tp, records in batch.items():
                        for r in records:
                            futures.append(await producer.send(
                                target_topic or topic, r.value, key=r.key, partition=tp.partition
                            ))  # fmt: skip
                    await asyncio.gather(*futures)
                    for tp, records in batch.items():
                        if records:
                            copied[tp.partition] = records[-1].offset + 1
                            total += len(records)
                    if not batch and stop.is_set():
                        ends = await consumer.end_offsets(tps)
                        if all(copied.get(tp.partition, 0) >= end for tp, end in ends.items()):
                            return total
            except (KafkaError, OSError, RuntimeError, TimeoutError):
                await asyncio.sleep(1)  # the source broker is restarting
            finally:
                await consumer.stop()
    finally:
        await producer.stop()
