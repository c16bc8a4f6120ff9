"""A consumer process for the kill test: applies every record of a deterministic log into
``incidents.applied_records`` with DB-stored offsets, then exits 0.

The bus is an in-memory one rebuilt identically in each run (same messages → same
offsets) and with nothing committed to the group, i.e. the worst case for a restart: only
the offsets stored in PostgreSQL say where to resume.

usage: python consumer_child.py DATABASE_URL RECORDS
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from sqlalchemy import text

from services.common.bus.base import OutMessage, Record
from services.common.bus.memory import MemoryBus
from services.common.consumer_loop import BatchConsumer, OffsetStorage
from services.common.db import UnitOfWork, create_engine, session_factory

TOPIC = "test.kill.v1"
PARTITIONS = 3


async def build_bus(n: int) -> MemoryBus:
    bus = MemoryBus()
    await bus.create_topics([TOPIC], partitions=PARTITIONS)
    producer = await bus.producer()
    await producer.send(
        [OutMessage(TOPIC, f"v{i}".encode(), key=f"k{i % 17}".encode()) for i in range(n)]
    )
    return bus


async def apply(uow: UnitOfWork, records: Sequence[Record]) -> None:
    await uow.session.execute(
        text("insert into incidents.applied_records values (:v, :t, :p, :o)"),
        [{"v": r.value.decode(), "t": r.topic, "p": r.partition, "o": r.offset} for r in records],
    )
    # Widen the window between the effects and the commit so a kill often lands in it.
    await asyncio.sleep(0.01)


async def main(url: str, n: int) -> None:
    bus = await build_bus(n)
    engine = create_engine(url)
    try:
        consumer = BatchConsumer(
            bus,
            [TOPIC],
            group_id="kill-test",
            sessions=session_factory(engine),
            apply=apply,
            storage=OffsetStorage.DATABASE,
            schema="incidents",
            batch_size=7,
            poll_timeout_s=0.05,
        )
        await consumer.start()
        while True:
            applied = await consumer.run_once()
            assigned = consumer.consumer.assignment()
            if applied == 0 and assigned and await consumer.consumer.lag() == 0:
                break
        await consumer.stop()
    finally:
        await engine.dispose()
        await bus.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
