"""A database of this suite's own (``outagedesk_i3``), a small topology and a driver that runs
the incidents handlers with the voltage/SLA/impact hooks installed, on a virtual clock.

F01-BKR ─┬─ F01-FU1 ── T1 (4 customers, 220 V)
         └─ F01-FU2 ── T2 (10 customers, 220 V)

Every :class:`Driver` is a fresh process as far as the code can tell (new caches, new
monitors, new hooks); two drivers on the same database model a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.signals import Signal
from services.common.bus.base import Record
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork, create_engine
from services.common.migrate import migrate_engine
from services.common.outbox import outbox_table
from services.common.policy import load_policy
from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer
from services.incidents.feeder_cache import FeederStateCache
from services.incidents.handlers import HandlerContext, apply_signals, run_timers
from services.incidents.quality_hooks import QualityHooks, apply_deliveries, install

DATABASE = "outagedesk_i3"
T0 = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)  # 08:00 in Asia/Shanghai
SIZES = {"T1": 4, "T2": 10}


async def fresh_database(server_url: str) -> str:
    """``outagedesk_i3`` with an emptied, freshly migrated ``incidents`` schema; its URL."""
    url = make_url(server_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    own = url.set(drivername="postgresql", database=DATABASE)
    conn = await asyncpg.connect(own.render_as_string(hide_password=False), timeout=10)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS incidents CASCADE")
    finally:
        await conn.close()
    target = url.set(database=DATABASE).render_as_string(hide_password=False)
    engine = create_engine(target)
    try:
        await migrate_engine(engine, schemas=["incidents"])
    finally:
        await engine.dispose()
    return target


def customers_of(transformer: str) -> list[str]:
    return [f"C-{transformer}-{i}" for i in range(1, SIZES[transformer] + 1)]


def meter(customer: str) -> str:
    return "M" + customer[1:]


def build_topology() -> Topology:
    devices = [
        Device("F01-BKR", "F01", None, "breaker"),
        Device("F01-FU1", "F01", "F01-BKR", "fuse"),
        Device("F01-FU2", "F01", "F01-BKR", "fuse"),
    ]
    transformers = [Transformer("T1", "F01-FU1", 220, 1), Transformer("T2", "F01-FU2", 220, 1)]
    customers = [Customer(c, meter(c), t, "residential") for t in SIZES for c in customers_of(t)]
    return Topology.build(
        [Feeder("F01", "Yunhe 1", "S1", "urban")], devices, transformers, customers
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def voltage(sid: str, customer: str, minutes: float, v_avg: float) -> Signal:
    tx = customer.split("-")[1]
    return Signal(
        signal_id=sid, source="meter", kind="voltage", feeder_id="F01", transformer_id=tx,
        meter_id=meter(customer), customer_id=customer, occurred_at=at(minutes),
        received_at=at(minutes), data={"interval_s": 900, "v_avg": v_avg, "v_min": v_avg - 3,
                                       "v_max": v_avg + 3},
    )  # fmt: skip


def customer_signal(sid: str, kind: str, customer: str, minutes: float, **data: Any) -> Signal:
    tx = customer.split("-")[1]
    return Signal(
        signal_id=sid, source="customer", kind=kind, feeder_id="F01",  # type: ignore[arg-type]
        transformer_id=tx, meter_id=meter(customer), customer_id=customer,
        occurred_at=at(minutes), received_at=at(minutes), data={"channel": "phone", **data},
    )  # fmt: skip


def device(sid: str, kind: str, device_id: str, minutes: float) -> Signal:
    return Signal(
        signal_id=sid, source="device", kind=kind, feeder_id="F01",  # type: ignore[arg-type]
        device_id=device_id, occurred_at=at(minutes), received_at=at(minutes),
        data={"lockout": True},
    )  # fmt: skip


class Driver:
    """One incarnation of the incidents service's handlers on ``sessions``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], start: datetime = T0) -> None:
        self.sessions = sessions
        self.clock = VirtualClock(start)
        self.cache = FeederStateCache(build_topology())
        self.ctx = HandlerContext(self.cache, self.clock)
        self.hooks: QualityHooks = install(self.ctx, load_policy(), "Asia/Shanghai")
        self._offset = 0

    async def feed(self, *signals: Signal) -> int:
        """Apply one batch of signals (clock moved to the latest event time first)."""
        latest = max(s.occurred_at for s in signals)
        if latest > self.clock.now():
            await self.clock.advance_to(latest)
        records = []
        for s in signals:
            self._offset += 1
            records.append(
                Record("grid.signals.v1", 0, self._offset, b"F01", s.model_dump_json().encode(), 0)
            )
        async with UnitOfWork(self.sessions) as uow:
            n = await apply_signals(uow, records, self.ctx)
            await uow.commit()
        return n

    async def timers(self, minutes: float) -> datetime | None:
        """Run every timer due at ``at(minutes)``; the next wake-up."""
        if at(minutes) > self.clock.now():
            await self.clock.advance_to(at(minutes))
        async with UnitOfWork(self.sessions) as uow:
            wake = await run_timers(uow, self.clock.now(), self.ctx)
            await uow.commit()
        return wake

    async def deliveries(self, *values: dict[str, Any]) -> int:
        records = [
            Record("notify.deliveries.v1", 0, i, None, orjson.dumps(v), 0)
            for i, v in enumerate(values)
        ]
        async with UnitOfWork(self.sessions) as uow:
            n = await apply_deliveries(uow, records, self.ctx, self.hooks.impact)
            await uow.commit()
        return n


async def lifecycle_events(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    """Every lifecycle event in the outbox, in insertion order."""
    t = outbox_table("incidents")
    async with sessions() as session:
        rows = await session.execute(
            sa.select(t.c.payload).where(t.c.topic == "incidents.lifecycle.v1").order_by(t.c.id)
        )
        return [orjson.loads(r.payload) for r in rows]


async def rows(
    sessions: async_sessionmaker[AsyncSession], table: sa.Table, *order: Any
) -> list[Any]:
    async with sessions() as session:
        return list((await session.execute(sa.select(table).order_by(*order))).all())
