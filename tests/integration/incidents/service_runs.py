"""The incidents service run whole on MemoryBus, a virtual clock and one database per run:
shared by the timer tests (wake-ups, processing watermark), which compare runs that differ
only in how they are driven."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from schemas.signals import Signal
from schemas.topics import SIGNALS
from services.common.bus.base import OutMessage
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.db import create_engine, session_factory
from services.common.migrate import migrate_engine
from services.incidents.entrypoints.service import IncidentsService
from tests.integration.incidents.quality_harness import T0, at, meter

Sessions = async_sessionmaker[AsyncSession]
Build = Callable[[Sessions, MemoryBus, VirtualClock], IncidentsService]


def power(sid: str, kind: str, customer: str, minutes: float) -> Signal:
    """A meter's power_off / power_on signal on feeder F01."""
    return Signal(
        signal_id=sid, source="meter", kind=kind, feeder_id="F01",  # type: ignore[arg-type]
        transformer_id=customer.split("-")[1], meter_id=meter(customer), customer_id=customer,
        occurred_at=at(minutes), received_at=at(minutes), data={},
    )  # fmt: skip


async def produce(bus: MemoryBus, signals: list[Signal]) -> None:
    """Put signals on the signals topic, keyed by their feeder."""
    producer = await bus.producer()
    await producer.send(
        [OutMessage(SIGNALS, orjson.dumps(s.model_dump(mode="json")), b"F01") for s in signals]
    )


def two_databases(pg_server: str | None, tmp_path: Path, name: str) -> list[str]:
    """Two fresh databases: on that PostgreSQL server, or SQLite files when it is None."""
    import asyncio

    from tests.integration.incidents.incidents_db import fresh_pg_database

    if pg_server is not None:
        return [asyncio.run(fresh_pg_database(pg_server, f"outagedesk_w_{name}_{i}"))
                for i in range(2)]  # fmt: skip
    return [f"sqlite+aiosqlite:///{tmp_path / f'{name}{i}.db'}" for i in range(2)]


@dataclass
class ServiceRun:
    svc: IncidentsService
    sessions: Sessions
    bus: MemoryBus
    clock: VirtualClock


@asynccontextmanager
async def started_services(urls: list[str], build: Build) -> AsyncIterator[list[ServiceRun]]:
    """One started service per database (migrated), each on its own bus and clock at T0."""
    engines: list[AsyncEngine] = []
    out: list[ServiceRun] = []
    try:
        for url in urls:
            engine = create_engine(url)
            engines.append(engine)
            await migrate_engine(engine, schemas=["topology", "incidents"])
            clock = VirtualClock(T0)
            bus = MemoryBus(clock=clock)
            sessions = session_factory(engine)
            svc = build(sessions, bus, clock)
            await svc.start()
            out.append(ServiceRun(svc, sessions, bus, clock))
        yield out
    finally:
        for run in out:
            await run.svc.stop()
            await run.bus.close()
        for engine in engines:
            await engine.dispose()
