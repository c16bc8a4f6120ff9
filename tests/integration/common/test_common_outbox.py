from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select

from services.common.bus.base import OutMessage
from services.common.bus.memory import MemoryBus
from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate
from services.common.outbox import OutboxRelay, add_to_outbox, outbox_table

TOPIC = "incidents.lifecycle.v1"
NOW = datetime(2026, 7, 14, 8, 0, tzinfo=UTC)


class _SlowProducer:
    """Forwards to the memory bus after a random pause, so two relays interleave."""

    def __init__(self, bus: MemoryBus, rng: random.Random) -> None:
        self._bus = bus
        self._rng = rng
        self.sent: list[OutMessage] = []

    async def send(self, messages: Sequence[OutMessage]) -> None:
        await asyncio.sleep(self._rng.uniform(0, 0.004))
        self.sent.extend(messages)
        producer = await self._bus.producer()
        await producer.send(messages)

    async def stop(self) -> None:
        return None


def _seqs_by_key(messages: Sequence[OutMessage]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        assert m.key is not None
        out[m.key.decode()].append(int(m.value.decode().split(":")[1]))
    return out


class TestOutboxRelay:
    async def test_two_relays_publish_each_row_once_in_per_key_order(self, db_url: str) -> None:
        await migrate(db_url, schemas=("incidents",))
        engine = create_engine(db_url)
        sessions = session_factory(engine)
        bus = MemoryBus()
        await bus.create_topics([TOPIC], partitions=4)
        rng = random.Random(7)
        producers = [_SlowProducer(bus, rng), _SlowProducer(bus, rng)]
        relays = [
            OutboxRelay(sessions, p, schema="incidents", batch_size=5, idle_interval_s=0.005)
            for p in producers
        ]
        aggregates, per_aggregate = 12, 25
        stop = asyncio.Event()

        next_seq = dict.fromkeys(range(aggregates), 1)

        async def write(rows: int) -> None:
            # One transaction per event, aggregates interleaved at random, seq in order
            # within each aggregate.
            for _ in range(rows):
                a = rng.choice(sorted(next_seq))
                seq = next_seq[a]
                async with UnitOfWork(sessions) as uow:
                    await add_to_outbox(
                        uow.session,
                        TOPIC,
                        f"INC-{a}",
                        f"INC-{a}:{seq}".encode(),
                        f"INC-{a}",
                        seq,
                        schema="incidents",
                        created_at=NOW,
                    )
                    await uow.commit()
                next_seq[a] += 1
                if next_seq[a] > per_aggregate:
                    del next_seq[a]
                await asyncio.sleep(0)

        try:
            # A backlog first (the relays were down), then events while they run.
            await write(aggregates * per_aggregate // 2)
            tasks = [asyncio.create_task(r.run_forever(stop)) for r in relays]
            await write(aggregates * per_aggregate - aggregates * per_aggregate // 2)
            table = outbox_table("incidents")
            async with asyncio.timeout(60):
                while True:
                    async with UnitOfWork(sessions) as uow:
                        left = await uow.session.scalar(
                            select(func.count()).where(table.c.published_at.is_(None))
                        )
                    if left == 0:
                        break
                    await asyncio.sleep(0.02)
            stop.set()
            await asyncio.gather(*tasks)

            assert all(p.sent for p in producers), "both relays should have published"
            published = [r for r in bus.records(TOPIC)]
            assert len(published) == aggregates * per_aggregate  # each row exactly once
            in_log_order = [OutMessage(TOPIC, r.value, r.key) for r in published]
            expected = list(range(1, per_aggregate + 1))
            assert _seqs_by_key(in_log_order) == {f"INC-{a}": expected for a in range(aggregates)}
        finally:
            stop.set()
            await engine.dispose()
            await bus.close()

    async def test_a_failed_send_leaves_rows_unpublished(self, sqlite_url: str) -> None:
        await migrate(sqlite_url, schemas=("incidents",))
        engine = create_engine(sqlite_url)
        sessions = session_factory(engine)
        bus = MemoryBus()
        producer = await bus.producer()
        try:
            async with UnitOfWork(sessions) as uow:
                for seq in (1, 2):
                    await add_to_outbox(
                        uow.session,
                        TOPIC,
                        "INC-1",
                        b"x",
                        "INC-1",
                        seq,
                        schema="incidents",
                        created_at=NOW,
                    )
                await uow.commit()
            await producer.stop()  # the broker refuses: BusError
            relay = OutboxRelay(sessions, producer, schema="incidents")
            stop = asyncio.Event()
            task = asyncio.create_task(relay.run_forever(stop))
            await asyncio.sleep(0.1)
            assert not relay.ready
            stop.set()
            await task
            working = OutboxRelay(sessions, await bus.producer(), schema="incidents")
            assert await working.run_once() == 2
            assert await working.run_once() == 0
            assert len(bus.records(TOPIC)) == 2
        finally:
            await engine.dispose()
            await bus.close()
