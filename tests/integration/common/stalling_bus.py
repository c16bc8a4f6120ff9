"""A MemoryBus whose first consumer in chosen groups wedges like aiokafka after a broker
restart (aio-libs/aiokafka#1154): polls return nothing although its partitions hold
records. Services' watchdog tests run on it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from services.common.bus.base import Consumer, Record, TopicPartition
from services.common.bus.memory import MemoryBus


class StalledConsumer:
    """Joins the group and reports lag, but never hands out a record."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner

    async def getmany(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        await self._inner.getmany(timeout_s=0, max_records=0)  # join the group, read nothing
        await asyncio.sleep(timeout_s or 0.01)
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


class StallingBus(MemoryBus):
    """The first consumer created for each group in ``stall_groups`` is a StalledConsumer;
    ``created[group]`` counts the consumers created per group."""

    def __init__(self, stall_groups: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stall_groups = set(stall_groups)
        self.created: dict[str, int] = {}

    async def consumer(  # type: ignore[override]
        self, topics: Sequence[str], *, group_id: str, **kwargs: Any
    ) -> Consumer:
        inner = await super().consumer(topics, group_id=group_id, **kwargs)
        self.created[group_id] = self.created.get(group_id, 0) + 1
        if group_id in self.stall_groups and self.created[group_id] == 1:
            return StalledConsumer(inner)
        return inner
