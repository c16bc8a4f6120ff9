"""Fixtures for the API tests: a migrated database of their own on the real PostgreSQL
(``outagedesk_i2``), emptied before each test, the app on an in-memory bus, and tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from topology_data import synthetic_topology  # type: ignore[import-not-found]

from services.common.bus.base import Record
from services.common.bus.memory import MemoryBus
from services.common.clock import WallClock
from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate
from services.common.topology.loader import build_topology
from services.common.topology.repository import store_topology
from services.incidents import orm
from services.incidents.api.app import create_app
from services.incidents.api.auth import create_token
from services.incidents.api.settings import ApiSettings
from services.incidents.feeder_cache import FeederStateCache
from services.incidents.handlers import HandlerContext, apply_signals

DATABASE = "outagedesk_i2"
SECRET = "test-secret-for-the-api-suite-0123456789"
TRUNCATE = (
    "incidents.incidents, incidents.interruptions, incidents.incident_customers, "
    "incidents.timeline, incidents.etr_history, incidents.notes, incidents.crews, "
    "incidents.planned_outages, incidents.audit, incidents.feeder_versions, "
    "incidents.outbox, incidents.issued_ids, incidents.holders, incidents.customer_state, "
    "incidents.correlator_timers, incidents.customer_messages, incidents.first_notices, "
    "ingest.dead_letters, topology.feeders, topology.devices, "
    "topology.transformers, topology.customers"
)


async def _ensure_database(server_url: str) -> str:
    url = make_url(server_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    own = url.set(database=DATABASE).render_as_string(hide_password=False)
    await migrate(own)
    return own


@pytest.fixture(scope="session")
def api_db_url(pg_url: str) -> str:
    """This suite's database, migrated once per session."""
    return asyncio.run(_ensure_database(pg_url))


@pytest.fixture
async def sessions(api_db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(api_db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {TRUNCATE} RESTART IDENTITY"))
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def settings(api_db_url: str) -> ApiSettings:
    return ApiSettings(database_url=api_db_url, jwt_secret=SECRET)  # type: ignore[arg-type]


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    instance = MemoryBus()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def client(
    settings: ApiSettings,
    sessions: async_sessionmaker[AsyncSession],
    bus: MemoryBus,
    handlers: HandlerContext,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, sessions, bus, WallClock(), handlers=handlers, sse_poll_s=0.05)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield http


TokenFactory = Callable[..., dict[str, str]]


@pytest.fixture
def auth() -> TokenFactory:
    """``auth("operator")`` → Authorization headers for a token with that role."""

    def headers(*roles: str, sub: str | None = None, ttl_s: int = 600) -> dict[str, str]:
        token = create_token(
            SECRET,
            sub or f"{roles[0] if roles else 'nobody'}-user",
            list(roles),
            now=datetime.now(UTC),
            ttl=timedelta(seconds=ttl_s),
        )
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
async def handlers(sessions: async_sessionmaker[AsyncSession]) -> HandlerContext:
    """The incidents handler context over a stored 200-customer topology (feeders F001…)."""
    topo = build_topology(synthetic_topology(200))
    async with sessions() as session:
        await store_topology(session, topo)
        await session.commit()
    return HandlerContext(cache=FeederStateCache(topo), clock=WallClock())


async def open_outage(
    sessions: async_sessionmaker[AsyncSession], ctx: HandlerContext, device_id: str, n: int = 1
) -> str:
    """Open an outage at ``device_id`` with a SCADA open; the new incident's id."""
    now = datetime.now(UTC)
    signal = {
        "signal_id": f"scada-{device_id}-{n}-{now.timestamp()}",
        "source": "device",
        "kind": "device_open",
        "feeder_id": ctx.cache.topology.feeder_of_device(device_id),
        "device_id": device_id,
        "occurred_at": (now - timedelta(minutes=3)).isoformat(),
        "received_at": now.isoformat(),
        "data": {"lockout": True},
    }
    record = Record("grid.signals.v1", 0, n, device_id.encode(), orjson.dumps(signal), 0)
    async with UnitOfWork(sessions) as uow:
        await apply_signals(uow, [record], ctx)
        await uow.commit()
        row = (
            await uow.session.execute(
                sa.select(orm.incidents.c.id)
                .where(orm.incidents.c.device_id == device_id)
                .order_by(orm.incidents.c.detected_at.desc())
            )
        ).first()
    assert row is not None, "no incident opened"
    return str(row.id)
