from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.common.bus.base import Consumer, OutMessage, Record, TopicPartition
from services.common.bus.memory import MemoryBus
from services.common.bus.watchdog import ProgressWatchdog
from services.common.consumer_loop import BatchConsumer, OffsetStorage
from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate
from services.common.offsets import OffsetStore

CHILD = Path(__file__).with_name("consumer_child.py")
TOPIC = "test.loop.v1"
APPLIED_DDL = (
    "create table incidents.applied_records "
    "(value text not null, topic text not null, part integer not null, off bigint not null)"
)


async def _prepare(url: str) -> None:
    await migrate(url, schemas=("incidents",))
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(APPLIED_DDL))
    finally:
        await engine.dispose()


async def _applied(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("select value from incidents.applied_records"))
            return [r.value for r in rows]
    finally:
        await engine.dispose()


async def _fill(bus: MemoryBus, n: int, partitions: int = 3) -> None:
    await bus.create_topics([TOPIC], partitions=partitions)
    producer = await bus.producer()
    await producer.send(
        [OutMessage(TOPIC, f"v{i}".encode(), key=f"k{i % 11}".encode()) for i in range(n)]
    )


async def _run_until_applied(consumer: BatchConsumer, url: str, n: int) -> None:
    """Start the consumer and run its own loop until ``n`` records are stored."""
    stop = asyncio.Event()
    await consumer.start()
    task = asyncio.create_task(consumer.run_forever(stop))
    try:
        async with asyncio.timeout(10):
            while len(await _applied(url)) < n:  # noqa: ASYNC110 - polls the DB
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task


class _Crash(Exception):
    """Stands for the process dying after the effects were written, before the commit."""


class TestDatabaseOffsets:
    async def test_each_record_applied_once_across_a_crash_before_commit(self, db_url: str) -> None:
        await _prepare(db_url)
        bus = MemoryBus()
        await _fill(bus, 100)
        engine = create_engine(db_url)
        sessions = session_factory(engine)
        batches = 0

        async def apply(uow: UnitOfWork, records: Sequence[Record]) -> None:
            nonlocal batches
            await uow.session.execute(
                text("insert into incidents.applied_records values (:v, :t, :p, :o)"),
                [
                    {"v": r.value.decode(), "t": r.topic, "p": r.partition, "o": r.offset}
                    for r in records
                ],
            )
            batches += 1
            if batches == 3:
                raise _Crash

        def new_consumer() -> BatchConsumer:
            return BatchConsumer(
                bus,
                [TOPIC],
                group_id="g",
                sessions=sessions,
                apply=apply,
                schema="incidents",
                batch_size=9,
                poll_timeout_s=0.01,
            )

        try:
            first = new_consumer()
            await first.start()

            async def run_until_crash() -> None:
                for _ in range(10):
                    await first.run_once()

            with pytest.raises(_Crash):
                await run_until_crash()
            # The "dead" process never committed the crashed batch. Its successor gets a
            # fresh broker with the same log and nothing committed to the group, so only
            # the offsets stored in the database say where to resume.
            await first.consumer.stop()
            await bus.close()
            bus = MemoryBus()
            await _fill(bus, 100)
            second = new_consumer()
            await second.start()
            while await second.run_once() or await second.consumer.lag():
                pass
            await second.stop()
            applied = await _applied(db_url)
            assert sorted(applied) == sorted(f"v{i}" for i in range(100))
            async with UnitOfWork(sessions) as uow:
                stored = await OffsetStore("incidents").load(
                    uow.session, "g", [TopicPartition(TOPIC, p) for p in range(3)]
                )
            assert sum(stored.values()) == 100
        finally:
            await engine.dispose()
            await bus.close()

    async def test_failed_batch_is_rewound_and_retried(self, sqlite_url: str) -> None:
        """Each failed batch is retried until it commits, and ``on_rollback`` hears of it:
        state kept in memory beside the database (as notify's decision state) stays equal
        to what was committed when its owner drops the batch in flight then."""
        await _prepare(sqlite_url)
        bus = MemoryBus()
        await _fill(bus, 30, partitions=2)
        engine = create_engine(sqlite_url)
        committed: list[str] = []  # the kept state: what the committed batches applied
        batch: list[str] = []  # the batch in flight's part of it
        failures, rollbacks = 2, 0

        async def apply(uow: UnitOfWork, records: Sequence[Record]) -> None:
            nonlocal failures
            if batch:  # the previous batch committed
                committed.extend(batch)
                batch.clear()
            batch.extend(r.value.decode() for r in records)
            await uow.session.execute(
                text("insert into incidents.applied_records values (:v, :t, :p, :o)"),
                [{"v": r.value.decode(), "t": r.topic, "p": 0, "o": 0} for r in records],
            )
            if failures:
                failures -= 1
                raise OperationalError("insert", {}, Exception("database went away"))

        def on_rollback() -> None:
            nonlocal rollbacks
            rollbacks += 1
            batch.clear()

        consumer = BatchConsumer(
            bus, [TOPIC], group_id="g", sessions=session_factory(engine), apply=apply,
            schema="incidents", batch_size=4, poll_timeout_s=0.01, on_rollback=on_rollback,
        )  # fmt: skip
        try:
            await _run_until_applied(consumer, sqlite_url, 30)
            assert consumer.ready
            assert sorted(await _applied(sqlite_url)) == sorted(f"v{i}" for i in range(30))
            assert bus.total_lag("g") == 0  # broker offsets follow, best effort
            assert rollbacks == 2
            assert sorted(committed + batch) == sorted(f"v{i}" for i in range(30))
        finally:
            await consumer.stop()
            await engine.dispose()
            await bus.close()


class TestBrokerOffsets:
    async def test_offsets_are_committed_only_after_apply_returned(self, sqlite_url: str) -> None:
        await _prepare(sqlite_url)
        bus = MemoryBus()
        await _fill(bus, 10, partitions=1)
        engine = create_engine(sqlite_url)
        seen_committed: list[int] = []

        async def apply(uow: UnitOfWork, records: Sequence[Record]) -> None:
            seen_committed.append(bus.committed("ingest").get(TopicPartition(TOPIC, 0), 0))

        consumer = BatchConsumer(
            bus,
            [TOPIC],
            group_id="ingest",
            sessions=session_factory(engine),
            apply=apply,
            storage=OffsetStorage.BROKER,
            batch_size=4,
            poll_timeout_s=0.01,
        )
        try:
            await consumer.start()
            assert [await consumer.run_once() for _ in range(3)] == [4, 4, 2]
            assert seen_committed == [0, 4, 8]  # during apply: only earlier batches
            assert bus.committed("ingest") == {TopicPartition(TOPIC, 0): 10}
        finally:
            await consumer.stop()
            await engine.dispose()
            await bus.close()


@pytest.mark.postgres
@pytest.mark.chaos
class TestKilledConsumerProcess:
    def test_sigkill_then_restart_applies_every_record_exactly_once(
        self, common_pg_url: str
    ) -> None:
        n = 1200
        asyncio.run(_prepare(common_pg_url))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        cmd = [sys.executable, str(CHILD), common_pg_url, str(n)]
        for kill_after in (100, 450, 800):
            child = subprocess.Popen(cmd, env=env)  # noqa: S603
            try:
                while len(asyncio.run(_applied(common_pg_url))) < kill_after:
                    assert child.poll() is None, "child finished before it could be killed"
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
        final = subprocess.run(cmd, env=env, timeout=300, check=False)  # noqa: S603
        assert final.returncode == 0
        applied = asyncio.run(_applied(common_pg_url))
        assert len(applied) == n
        assert set(applied) == {f"v{i}" for i in range(n)}


class _StalledConsumer:
    """A bus consumer wedged like aiokafka after a broker restart: polls return nothing
    although its partitions hold records."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner

    async def getmany(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        await self._inner.getmany(timeout_s=0, max_records=0)  # join the group, read nothing
        await asyncio.sleep(timeout_s)
        return []

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        await self._inner.commit(offsets)

    def assignment(self) -> set[TopicPartition]:
        return self._inner.assignment()

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        await self._inner.seek(tp, offset)

    async def lag(self) -> int:
        return await self._inner.lag()

    async def stop(self) -> None:
        await self._inner.stop()


class _FirstConsumerStalls(MemoryBus):
    created = 0

    async def consumer(  # type: ignore[override]
        self, topics: Sequence[str], **kwargs: Any
    ) -> Consumer:
        inner = await super().consumer(topics, **kwargs)
        self.created += 1
        return _StalledConsumer(inner) if self.created == 1 else inner


class TestWatchdog:
    async def test_a_stalled_consumer_is_restarted_and_resumes(self, sqlite_url: str) -> None:
        await _prepare(sqlite_url)
        bus = _FirstConsumerStalls()
        await _fill(bus, 20)
        engine = create_engine(sqlite_url)
        restarts = Counter("restarts", "test", ["client"], registry=CollectorRegistry())

        async def apply(uow: UnitOfWork, records: Sequence[Record]) -> None:
            await uow.session.execute(
                text("insert into incidents.applied_records values (:v, :t, 0, 0)"),
                [{"v": r.value.decode(), "t": r.topic} for r in records],
            )

        consumer = BatchConsumer(
            bus,
            [TOPIC],
            group_id="g",
            sessions=session_factory(engine),
            apply=apply,
            schema="incidents",
            poll_timeout_s=0.01,
            watchdog=ProgressWatchdog("consumer:g", stall_after_s=0.2, restarts=restarts),
        )
        stop = asyncio.Event()
        try:
            await consumer.start()
            task = asyncio.create_task(consumer.run_forever(stop))
            async with asyncio.timeout(10):
                while len(await _applied(sqlite_url)) < 20:  # noqa: ASYNC110 - polls the DB
                    await asyncio.sleep(0.02)
            stop.set()
            await task
            assert bus.created == 2
            assert restarts.labels(client="consumer:g")._value.get() == 1
        finally:
            await consumer.stop()
            await engine.dispose()
            await bus.close()
