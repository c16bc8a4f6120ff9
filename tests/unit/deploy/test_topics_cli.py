"""``outagedesk topics create``: every DESIGN topic, the chosen partition count, retries."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from schemas.topics import SIGNALS, TOPICS
from services.common.bus.base import BusError
from services.common.entrypoints.topics_cli import create_all_topics


class FlakyBus:
    """Refuses ``failures`` times, then records what it was asked to create."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.created: list[tuple[list[str], int]] = []

    async def create_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        if self.failures:
            self.failures -= 1
            raise BusError("no broker")
        self.created.append((list(topics), partitions))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class TestCreateAllTopics:
    async def test_every_design_topic_gets_the_requested_partitions(self) -> None:
        bus = FlakyBus(failures=0)
        attempts = await create_all_topics(bus, list(TOPICS), partitions=6, wait_s=0)
        assert attempts == 1
        assert bus.created == [(list(TOPICS), 6)]
        assert SIGNALS in bus.created[0][0]

    async def test_retries_until_the_broker_answers(self) -> None:
        bus, clock = FlakyBus(failures=3), FakeTime()
        attempts = await create_all_topics(
            bus, ["a", "b"], partitions=4, wait_s=60, sleep=clock.sleep, monotonic=clock.monotonic
        )
        assert attempts == 4
        assert bus.created == [(["a", "b"], 4)]
        assert clock.now > 0

    async def test_gives_up_after_the_wait(self) -> None:
        bus, clock = FlakyBus(failures=1000), FakeTime()
        with pytest.raises(BusError, match="not created"):
            await create_all_topics(
                bus, ["a"], partitions=1, wait_s=30, sleep=clock.sleep, monotonic=clock.monotonic
            )
        assert clock.now <= 30
        assert bus.created == []
