"""Fixtures shared by the whole suite: the real servers started by deploy/local/up.sh and a
``bus`` fixture that runs one test body on the in-memory bus and on real Kafka.

A server that does not answer fails the test that needs it, never skips it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from services.common.bus.base import Bus
from services.common.bus.kafka import KafkaBus
from services.common.bus.memory import MemoryBus

DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"


async def _kafka_answers(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(15):
            await admin.start()
            await admin.describe_cluster()
    finally:
        async with asyncio.timeout(10):
            await admin.close()


async def _postgres_answers(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=10)
    try:
        await conn.fetchval("select 1")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the real broker (env OUTAGEDESK_TEST_KAFKA); fails if it is down."""
    bootstrap = os.environ.get("OUTAGEDESK_TEST_KAFKA", DEFAULT_KAFKA)
    try:
        asyncio.run(_kafka_answers(bootstrap))
    except Exception as exc:  # noqa: BLE001 - any failure means the broker is unusable
        pytest.fail(
            f"Kafka at {bootstrap} does not answer ({exc!r}); start it with "
            "`bash deploy/local/kafka.sh start` or set OUTAGEDESK_TEST_KAFKA",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(scope="session")
def pg_url() -> str:
    """SQLAlchemy URL of the real PostgreSQL (env OUTAGEDESK_TEST_DATABASE_URL); fails if
    it does not answer."""
    url = os.environ.get("OUTAGEDESK_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        asyncio.run(_postgres_answers(url))
    except Exception as exc:  # noqa: BLE001 - any failure means the server is unusable
        pytest.fail(
            f"PostgreSQL at {url} does not answer ({exc!r}); start it with "
            "`bash deploy/local/postgres.sh start` or set OUTAGEDESK_TEST_DATABASE_URL",
            pytrace=False,
        )
    return url


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    """ "memory", or the real broker's bootstrap address (resolved here, outside the event
    loop, because the broker check runs its own loop)."""
    if request.param == "memory":
        return "memory"
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    return bootstrap


@pytest.fixture
async def bus(bus_kind: str) -> AsyncIterator[Bus]:
    """The same test body on the in-memory bus and on the real broker."""
    instance: Bus = MemoryBus() if bus_kind == "memory" else KafkaBus(bus_kind)
    try:
        yield instance
    finally:
        await instance.close()
