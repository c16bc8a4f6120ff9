"""The bus in process, with Kafka's semantics, for the demo and unit tests.

What carries over from Kafka: topics with N partitions, partition = murmur2(key) like
Kafka's default partitioner (keyless messages round-robin), append-only logs with offsets,
consumer groups that share partitions, committed offsets per group, new groups starting at
the earliest offset, and redelivery of everything a member read but did not commit once its
partitions move to another member.

Rebalances follow the eager protocol: when a member joins or leaves (or a subscribed topic
appears), every member revokes all its partitions in its next ``getmany`` (``on_revoked``),
and a partition is handed to its new owner only after the previous owner released it, so
the previous owner can commit in ``on_revoked`` before anyone else reads.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.common.bus.base import (
    BusError,
    OnAssigned,
    OnRevoked,
    OutMessage,
    Record,
    TopicPartition,
)
from services.common.clock import Clock


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as a signed int32."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class _Topic:
    logs: list[list[Record]]
    round_robin: itertools.count[int] = field(default_factory=itertools.count)


@dataclass
class _Group:
    members: list[MemoryConsumer] = field(default_factory=list)
    topics: set[str] = field(default_factory=set)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    owner: dict[TopicPartition, MemoryConsumer] = field(default_factory=dict)
    target: dict[MemoryConsumer, set[TopicPartition]] = field(default_factory=dict)
    generation: int = 0


class MemoryBus:
    """An in-process broker. ``clock`` (optional) stamps record timestamps; default wall time."""

    def __init__(self, *, clock: Clock | None = None, default_partitions: int = 1) -> None:
        self._clock = clock
        self._default_partitions = default_partitions
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._member_ids = itertools.count(1)
        self._closed = False

    # -- Bus port ----------------------------------------------------------------------
    async def create_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        for name in topics:
            self._ensure_topic(name, partitions)

    async def producer(self, *, client_id: str = "outagedesk") -> MemoryProducer:
        self._check_open()
        return MemoryProducer(self)

    async def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        on_assigned: OnAssigned | None = None,
        on_revoked: OnRevoked | None = None,
        client_id: str = "outagedesk",
    ) -> MemoryConsumer:
        self._check_open()
        group = self._groups.setdefault(group_id, _Group())
        member = MemoryConsumer(
            self, group, set(topics), next(self._member_ids), on_assigned, on_revoked
        )
        group.members.append(member)
        group.topics |= set(topics)
        self._rebalance(group)
        return member

    async def close(self) -> None:
        for group in self._groups.values():
            for member in list(group.members):
                await member.stop()
        self._closed = True

    # -- inspection helpers (demo and tests) -----------------------------------------
    def total_lag(self, group_id: str) -> int:
        """Records in the group's topics beyond the group's *committed* offsets.

        Zero means every consumer of the group has committed everything published so far;
        consumers that keep offsets elsewhere must still commit to the group to reach zero.
        """
        group = self._groups.get(group_id)
        if group is None:
            return 0
        lag = 0
        for name in group.topics:
            topic = self._topics.get(name)
            for p, log in enumerate(topic.logs if topic else []):
                lag += len(log) - group.committed.get(TopicPartition(name, p), 0)
        return lag

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """A copy of the group's committed offsets."""
        group = self._groups.get(group_id)
        return dict(group.committed) if group else {}

    def records(self, topic: str) -> list[Record]:
        """Every record of ``topic``, partition by partition."""
        t = self._topics.get(topic)
        return [r for log in t.logs for r in log] if t else []

    def partitions(self, topic: str) -> int:
        """Partition count of ``topic`` (0 when it does not exist)."""
        t = self._topics.get(topic)
        return len(t.logs) if t else 0

    # -- internals ---------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BusError("memory bus is closed")

    def _ensure_topic(self, name: str, partitions: int) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = _Topic(logs=[[] for _ in range(max(1, partitions))])
            self._topics[name] = topic
            for group in self._groups.values():
                if any(name in m.topics for m in group.members):
                    self._rebalance(group)
        return topic

    def _now_ms(self) -> int:
        if self._clock is not None:
            return int(self._clock.now().timestamp() * 1000)
        return time.time_ns() // 1_000_000

    def _append(self, messages: Sequence[OutMessage]) -> None:
        self._check_open()
        touched: set[str] = set()
        for msg in messages:
            topic = self._ensure_topic(msg.topic, self._default_partitions)
            n = len(topic.logs)
            p = (
                partition_for_key(msg.key, n)
                if msg.key is not None
                else next(topic.round_robin) % n
            )
            log = topic.logs[p]
            log.append(Record(msg.topic, p, len(log), msg.key, msg.value, self._now_ms()))
            touched.add(msg.topic)
        for group in self._groups.values():
            for member in group.members:
                if member.topics & touched:
                    member.wake.set()

    def _rebalance(self, group: _Group) -> None:
        """New target assignment: each topic's partitions dealt round-robin to its members."""
        group.generation += 1
        group.target = {m: set() for m in group.members}
        for name in sorted(group.topics):
            topic = self._topics.get(name)
            members = [m for m in group.members if name in m.topics]
            if topic is None or not members:
                continue
            for p in range(len(topic.logs)):
                group.target[members[p % len(members)]].add(TopicPartition(name, p))
        for member in group.members:
            member.wake.set()

    def _end_offset(self, tp: TopicPartition) -> int:
        topic = self._topics.get(tp.topic)
        return len(topic.logs[tp.partition]) if topic else 0

    def _read(self, tp: TopicPartition, start: int, limit: int) -> list[Record]:
        topic = self._topics[tp.topic]
        return topic.logs[tp.partition][start : start + limit]


class MemoryProducer:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._stopped = False

    async def send(self, messages: Sequence[OutMessage]) -> None:
        if self._stopped:
            raise BusError("producer is stopped")
        self._bus._append(messages)
        # A real send yields to the loop; so does this, so callers never starve consumers.
        await asyncio.sleep(0)

    async def stop(self) -> None:
        self._stopped = True


class MemoryConsumer:
    def __init__(
        self,
        bus: MemoryBus,
        group: _Group,
        topics: set[str],
        member_id: int,
        on_assigned: OnAssigned | None,
        on_revoked: OnRevoked | None,
    ) -> None:
        self._bus = bus
        self._group = group
        self.topics = topics
        self.member_id = member_id
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._generation = 0
        self._positions: dict[TopicPartition, int] = {}
        self._stopped = False
        self._rotation = 0
        self.wake = asyncio.Event()

    def __hash__(self) -> int:
        return self.member_id

    def __eq__(self, other: object) -> bool:
        return self is other

    async def getmany(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        while True:
            if self._stopped:
                raise BusError("consumer is stopped")
            self.wake.clear()
            await self._sync()
            records = self._take(max_records)
            if records:
                return records
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            try:
                async with asyncio.timeout(remaining):
                    await self.wake.wait()
            except TimeoutError:
                return []

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        if self._stopped:
            raise BusError("consumer is stopped")
        to_commit = dict(self._positions) if offsets is None else dict(offsets)
        foreign = set(to_commit) - set(self._positions)
        if foreign:
            raise BusError(f"cannot commit partitions not assigned to this member: {foreign}")
        self._group.committed.update(to_commit)
        await asyncio.sleep(0)

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise BusError(f"{tp} is not assigned to this consumer")
        self._positions[tp] = offset

    async def lag(self) -> int:
        return sum(self._bus._end_offset(tp) - pos for tp, pos in self._positions.items())

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        group = self._group
        group.members.remove(self)
        for tp in self._positions:
            if group.owner.get(tp) is self:
                del group.owner[tp]
        self._positions.clear()
        self._bus._rebalance(group)

    # -- internals ---------------------------------------------------------------------
    async def _sync(self) -> None:
        """Catch up with the group's generation: revoke everything, then claim the target
        once every partition in it has been released by its previous owner."""
        group = self._group
        while self._generation != group.generation:
            generation = group.generation
            if self._positions:
                revoked = set(self._positions)
                if self._on_revoked is not None:
                    await self._on_revoked(revoked)
                for tp in revoked:
                    if group.owner.get(tp) is self:
                        del group.owner[tp]
                self._positions.clear()
                for other in group.members:
                    other.wake.set()
                if generation != group.generation:
                    continue
            target = group.target.get(self, set())
            if any(group.owner.get(tp, self) is not self for tp in target):
                return  # a previous owner has not released yet; woken when it does
            for tp in target:
                group.owner[tp] = self
            self._positions = {tp: group.committed.get(tp, 0) for tp in target}
            self._generation = generation
            if self._on_assigned is not None:
                seeks = await self._on_assigned(set(target))
                for tp, offset in seeks.items():
                    if tp in self._positions:
                        self._positions[tp] = offset

    def _take(self, max_records: int) -> list[Record]:
        tps = sorted(self._positions)
        if not tps:
            return []
        # Start from a different partition each call so one busy partition cannot starve
        # the others.
        self._rotation = (self._rotation + 1) % len(tps)
        out: list[Record] = []
        for tp in tps[self._rotation :] + tps[: self._rotation]:
            if len(out) >= max_records:
                break
            batch = self._bus._read(tp, self._positions[tp], max_records - len(out))
            if batch:
                out.extend(batch)
                self._positions[tp] = batch[-1].offset + 1
        return out
