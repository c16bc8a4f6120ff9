"""The bus contract: one test body, run on the in-memory bus and on the real Kafka broker.

Names are unique per test (uuid) so runs and parallel helpers never share topics or groups.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

import pytest

from services.common.bus.base import Bus, Consumer, OutMessage, Record, TopicPartition
from services.common.bus.memory import partition_for_key

DEADLINE_S = 30.0


def unique(prefix: str) -> str:
    return f"test.{prefix}.{uuid.uuid4().hex[:12]}"


async def consume(consumer: Consumer, count: int, *, max_records: int = 500) -> list[Record]:
    """Poll until ``count`` records arrived (fails after DEADLINE_S), then one short poll
    more to catch anything extra."""
    got: list[Record] = []
    async with asyncio.timeout(DEADLINE_S):
        while len(got) < count:
            got += await consumer.getmany(timeout_s=0.5, max_records=max_records)
    got += await consumer.getmany(timeout_s=0.3, max_records=max_records)
    return got


async def publish(bus: Bus, topic: str, items: list[tuple[str | None, str]]) -> None:
    producer = await bus.producer()
    try:
        await producer.send(
            [OutMessage(topic, v.encode(), k.encode() if k is not None else None) for k, v in items]
        )
    finally:
        await producer.stop()


class TestOrdering:
    async def test_records_of_one_key_stay_in_order_on_the_kafka_partition(self, bus: Bus) -> None:
        topic = unique("order")
        await bus.create_topics([topic], partitions=4)
        keys = [f"F{i:03d}" for i in range(6)]
        items: list[tuple[str | None, str]] = [
            (keys[i % 6], f"{keys[i % 6]}:{i}") for i in range(120)
        ]
        for start in range(0, 120, 40):  # several sends, as a real producer would
            await publish(bus, topic, items[start : start + 40])
        consumer = await bus.consumer([topic], group_id=unique("g"))

        got = await consume(consumer, 120)

        assert len(got) == 120
        for key in keys:
            mine = [r for r in got if r.key == key.encode()]
            assert [r.value.decode() for r in mine] == [v for k, v in items if k == key]
            # Same partition as Kafka's default (murmur2) partitioner picks.
            assert {r.partition for r in mine} == {partition_for_key(key.encode(), 4)}
            assert [r.offset for r in mine] == sorted(r.offset for r in mine)


class TestConsumerGroup:
    async def test_two_members_split_the_partitions_and_see_every_record_once(
        self, bus: Bus
    ) -> None:
        topic, group = unique("share"), unique("g")
        await bus.create_topics([topic], partitions=4)
        revoked_first: list[set[TopicPartition]] = []

        async def on_revoked(tps: set[TopicPartition]) -> None:
            revoked_first.append(tps)

        first = await bus.consumer([topic], group_id=group, on_revoked=on_revoked)
        async with asyncio.timeout(DEADLINE_S):
            while len(first.assignment()) < 4:
                assert await first.getmany(timeout_s=0.2) == []
        second = await bus.consumer([topic], group_id=group)
        async with asyncio.timeout(DEADLINE_S):
            while not (
                first.assignment()
                and second.assignment()
                and len(first.assignment() | second.assignment()) == 4
            ):
                await asyncio.gather(first.getmany(timeout_s=0.2), second.getmany(timeout_s=0.2))

        await publish(bus, topic, [(f"k{i}", str(i)) for i in range(200)])
        seen: list[Record] = []
        async with asyncio.timeout(DEADLINE_S):
            while len(seen) < 200:
                a, b = await asyncio.gather(first.getmany(0.3), second.getmany(0.3))
                assert {r.tp for r in a} <= first.assignment()
                assert {r.tp for r in b} <= second.assignment()
                seen += a + b

        assert first.assignment().isdisjoint(second.assignment())
        assert len(first.assignment()) == len(second.assignment()) == 2
        assert sorted(int(r.value) for r in seen) == list(range(200))
        assert revoked_first
        assert revoked_first[0] == {TopicPartition(topic, p) for p in range(4)}
        await second.stop()
        await first.stop()


class TestRedelivery:
    async def test_records_read_but_not_committed_go_to_the_next_member(self, bus: Bus) -> None:
        topic, group = unique("redeliver"), unique("g")
        await bus.create_topics([topic], partitions=1)
        await publish(bus, topic, [("k", str(i)) for i in range(10)])
        tp = TopicPartition(topic, 0)

        first = await bus.consumer([topic], group_id=group)
        assert [r.offset for r in await consume(first, 10)] == list(range(10))
        await first.commit({tp: 4})  # only the first four were "processed"
        await first.stop()

        second = await bus.consumer([topic], group_id=group)
        again = await consume(second, 6)

        assert [r.offset for r in again] == list(range(4, 10))
        await second.stop()

    async def test_a_member_stopped_without_commit_leaves_everything_to_the_next(
        self, bus: Bus
    ) -> None:
        topic, group = unique("redeliver-all"), unique("g")
        await bus.create_topics([topic], partitions=2)
        await publish(bus, topic, [(f"k{i}", str(i)) for i in range(20)])

        first = await bus.consumer([topic], group_id=group)
        assert len(await consume(first, 20)) == 20
        await first.stop()
        second = await bus.consumer([topic], group_id=group)

        assert sorted(int(r.value) for r in await consume(second, 20)) == list(range(20))
        await second.stop()


class TestRestart:
    async def test_committed_offsets_resume_without_loss_or_repeat(self, bus: Bus) -> None:
        topic, group = unique("resume"), unique("g")
        await bus.create_topics([topic], partitions=3)
        await publish(bus, topic, [(f"k{i}", str(i)) for i in range(30)])
        first = await bus.consumer([topic], group_id=group)
        assert len(await consume(first, 30)) == 30
        await first.commit()
        await first.stop()

        await publish(bus, topic, [(f"k{i}", str(i)) for i in range(30, 45)])
        second = await bus.consumer([topic], group_id=group)

        assert sorted(int(r.value) for r in await consume(second, 15)) == list(range(30, 45))
        await second.stop()

    async def test_a_new_group_starts_at_the_earliest_offset(self, bus: Bus) -> None:
        topic = unique("earliest")
        await bus.create_topics([topic], partitions=1)
        await publish(bus, topic, [(None, str(i)) for i in range(5)])
        consumer = await bus.consumer([topic], group_id=unique("g"))

        assert [r.value for r in await consume(consumer, 5)] == [b"0", b"1", b"2", b"3", b"4"]


class TestBatches:
    async def test_getmany_returns_many_records_at_once_up_to_max_records(self, bus: Bus) -> None:
        topic = unique("batch")
        await bus.create_topics([topic], partitions=1)
        await publish(bus, topic, [("k", str(i)) for i in range(100)])
        consumer = await bus.consumer([topic], group_id=unique("g"))

        batches: list[list[Record]] = []
        async with asyncio.timeout(DEADLINE_S):
            while sum(map(len, batches)) < 100:
                batch = await consumer.getmany(timeout_s=0.5, max_records=30)
                if batch:
                    batches.append(batch)

        assert max(map(len, batches)) == 30
        assert all(len(b) <= 30 for b in batches)
        assert [r.offset for b in batches for r in b] == list(range(100))


class TestAssignment:
    async def test_offsets_returned_by_on_assigned_are_honoured(self, bus: Bus) -> None:
        topic = unique("seek")
        await bus.create_topics([topic], partitions=2)
        key0 = next(
            k for k in (f"k{i}" for i in range(99)) if partition_for_key(k.encode(), 2) == 0
        )
        key1 = next(
            k for k in (f"k{i}" for i in range(99)) if partition_for_key(k.encode(), 2) == 1
        )
        await publish(bus, topic, [(key0 if i % 2 else key1, str(i)) for i in range(20)])
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        assigned: list[set[TopicPartition]] = []

        async def on_assigned(tps: set[TopicPartition]) -> Mapping[TopicPartition, int]:
            assigned.append(tps)
            return {tp0: 7}  # tp1 left out: it resumes from the committed offset (none: 0)

        consumer = await bus.consumer([topic], group_id=unique("g"), on_assigned=on_assigned)
        got = await consume(consumer, 13)

        assert assigned == [{tp0, tp1}]
        assert sorted(r.offset for r in got if r.partition == 0) == [7, 8, 9]
        assert sorted(r.offset for r in got if r.partition == 1) == list(range(10))

    async def test_an_error_in_on_assigned_surfaces_from_getmany(self, bus: Bus) -> None:
        topic = unique("assign-error")
        await bus.create_topics([topic], partitions=1)

        async def broken(tps: set[TopicPartition]) -> Mapping[TopicPartition, int]:
            raise RuntimeError("database down")

        consumer = await bus.consumer([topic], group_id=unique("g"), on_assigned=broken)

        async def poll_forever() -> None:
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    await consumer.getmany(timeout_s=0.2)

        with pytest.raises(RuntimeError, match="database down"):
            await poll_forever()


class TestLag:
    async def test_lag_counts_records_not_yet_returned(self, bus: Bus) -> None:
        topic = unique("lag")
        await bus.create_topics([topic], partitions=1)
        await publish(bus, topic, [("k", str(i)) for i in range(10)])
        consumer = await bus.consumer([topic], group_id=unique("g"))

        got: list[Record] = []
        async with asyncio.timeout(DEADLINE_S):
            while len(got) < 4:
                got += await consumer.getmany(timeout_s=0.5, max_records=4 - len(got))
        assert await consumer.lag() == 6

        await consume(consumer, 6)
        assert await consumer.lag() == 0
