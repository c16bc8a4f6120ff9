"""KafkaBus against a port where no broker listens: every call fails as BusError, in time."""

from __future__ import annotations

import asyncio

import pytest

from services.common.bus.base import BusError
from services.common.bus.kafka import KafkaBus

NOWHERE = "127.0.0.1:1"


class TestKafkaBusWithoutBroker:
    async def test_producer_creation_fails_with_bus_error_within_its_timeout(self) -> None:
        bus = KafkaBus(NOWHERE, timeout_s=2)
        async with asyncio.timeout(10):
            with pytest.raises(BusError):
                await bus.producer()

    async def test_consumer_creation_fails_with_bus_error_within_its_timeout(self) -> None:
        bus = KafkaBus(NOWHERE, timeout_s=2)
        async with asyncio.timeout(10):
            with pytest.raises(BusError):
                await bus.consumer(["t"], group_id="g")

    async def test_create_topics_fails_with_bus_error_within_its_timeout(self) -> None:
        bus = KafkaBus(NOWHERE, timeout_s=2)
        async with asyncio.timeout(10):
            with pytest.raises(BusError):
                await bus.create_topics(["t"])
