"""MemoryBus behaviour beyond the shared contract (which runs in tests/integration/bus)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from services.common.bus.base import BusError, OutMessage, TopicPartition
from services.common.bus.memory import MemoryBus, murmur2


class TestMurmur2:
    @pytest.mark.parametrize(
        ("text", "expected"),
        # The vectors of Kafka's own UtilsTest.testMurmur2.
        [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ],
    )
    def test_matches_kafka(self, text: str, expected: int) -> None:
        assert murmur2(text.encode()) == expected


class TestMemoryBus:
    async def test_getmany_wakes_on_publish_instead_of_waiting_out_its_timeout(self) -> None:
        bus = MemoryBus()
        consumer = await bus.consumer(["t"], group_id="g")
        await bus.create_topics(["t"])
        producer = await bus.producer()
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = asyncio.create_task(consumer.getmany(timeout_s=10))
        await asyncio.sleep(0.05)
        await producer.send([OutMessage("t", b"x")])

        records = await waiting

        assert [r.value for r in records] == [b"x"]
        assert loop.time() - started < 1

    async def test_a_partition_moves_only_after_its_owner_revoked_it(self) -> None:
        bus = MemoryBus()
        await bus.create_topics(["t"], partitions=2)
        producer = await bus.producer()
        await producer.send([OutMessage("t", str(i).encode()) for i in range(10)])
        first = None

        async def commit_on_revoke(tps: set[TopicPartition]) -> None:
            assert first is not None
            await first.commit()

        first = await bus.consumer(["t"], group_id="g", on_revoked=commit_on_revoke)
        assert len(await first.getmany(timeout_s=0.1)) == 10
        second = await bus.consumer(["t"], group_id="g")

        # The first member has not polled since the join, so it still owns everything.
        assert await second.getmany(timeout_s=0.05) == []
        assert second.assignment() == set()
        assert await first.getmany(timeout_s=0.05) == []  # revokes, commits, takes its half
        assert await second.getmany(timeout_s=0.05) == []  # committed: nothing redelivered
        assert len(first.assignment()) == len(second.assignment()) == 1

    async def test_total_lag_counts_what_the_group_has_not_committed(self) -> None:
        bus = MemoryBus()
        await bus.create_topics(["t"], partitions=3)
        producer = await bus.producer()
        await producer.send([OutMessage("t", b"v", f"k{i}".encode()) for i in range(9)])
        consumer = await bus.consumer(["t"], group_id="g")
        assert bus.total_lag("g") == 9

        assert len(await consumer.getmany(timeout_s=0)) == 9
        assert bus.total_lag("g") == 9
        await consumer.commit()
        assert bus.total_lag("g") == 0
        assert bus.total_lag("unknown") == 0

    async def test_an_error_in_on_assigned_surfaces_from_getmany(self) -> None:
        bus = MemoryBus()
        await bus.create_topics(["t"])

        async def broken(tps: set[TopicPartition]) -> Mapping[TopicPartition, int]:
            raise RuntimeError("database down")

        consumer = await bus.consumer(["t"], group_id="g", on_assigned=broken)
        with pytest.raises(RuntimeError, match="database down"):
            await consumer.getmany(timeout_s=0)

    async def test_committing_a_partition_not_assigned_is_refused(self) -> None:
        bus = MemoryBus()
        await bus.create_topics(["t"])
        consumer = await bus.consumer(["t"], group_id="g")
        await consumer.getmany(timeout_s=0)
        with pytest.raises(BusError, match="not assigned"):
            await consumer.commit({TopicPartition("other", 0): 1})

    async def test_a_topic_created_after_subscribing_is_assigned(self) -> None:
        bus = MemoryBus()
        consumer = await bus.consumer(["later"], group_id="g")
        assert await consumer.getmany(timeout_s=0) == []
        await bus.create_topics(["later"], partitions=2)
        await consumer.getmany(timeout_s=0)
        assert consumer.assignment() == {TopicPartition("later", 0), TopicPartition("later", 1)}
