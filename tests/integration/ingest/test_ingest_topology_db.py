"""Ingest enriches from the topology stored in PostgreSQL and follows a reload announced
on topology.changed.v1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from ingest_harness import (
    NOW,
    OCCURRED,
    drain,
    make_topology,
    prefix_of,
    publish,
    read_topic,
    value,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas import METER_EVENTS, SIGNALS, TOPOLOGY_CHANGED
from services.common.bus.base import Bus
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork
from services.common.topology.repository import store_topology
from services.ingest.entrypoints.service import IngestService
from services.ingest.settings import IngestSettings


async def store(sessions: async_sessionmaker[AsyncSession], run: str, extra: int) -> int:
    async with UnitOfWork(sessions) as uow:
        version = await store_topology(uow.session, make_topology(run, extra_meters=extra))
        await uow.commit()
    return version


class TestTopologyFromDatabase:
    async def test_stored_topology_is_used_and_a_reload_is_followed(
        self, bus: Bus, ingest_sessions: async_sessionmaker[AsyncSession], run_id: str
    ) -> None:
        await store(ingest_sessions, run_id, extra=0)
        settings = IngestSettings(
            ingest_group_id=f"ingest-db-{run_id}",
            ingest_topic_prefix=prefix_of(run_id),
            ingest_poll_timeout_s=0.2,
            ingest_metrics_port=0,
        )
        service = IngestService(settings, bus, ingest_sessions, VirtualClock(NOW))
        await service.start()

        def event(n: int, meter: int) -> tuple[str, str, bytes]:
            return (
                METER_EVENTS,
                f"{run_id}-M{meter}",
                value(
                    event_id=f"{run_id}-e{n}",
                    meter_id=f"{run_id}-M{meter}",
                    type="last_gasp",
                    occurred_at=OCCURRED,
                ),
            )

        try:
            await drain(service)
            await publish(
                bus, [event(1, 1), event(2, 5)], prefix_of(run_id)
            )  # M5 not in the topology yet
            await drain(service)
            version = await store(ingest_sessions, run_id, extra=1)
            changed = value(version=version, changed_at=datetime.now(UTC).isoformat())
            await publish(bus, [(TOPOLOGY_CHANGED, "topology", changed)])
            async with asyncio.timeout(30):
                while service.topology.current.version != version:
                    await service.run_once(10)
            await publish(bus, [event(3, 5)], prefix_of(run_id))
            await drain(service)
        finally:
            await service.stop()

        signals = [
            orjson.loads(r.value)
            for r in await read_topic(bus, prefix_of(run_id) + SIGNALS, f"r-{run_id}")
        ]
        ours = {
            s["signal_id"]: s["customer_id"] for s in signals if s["signal_id"].startswith(run_id)
        }
        assert ours == {f"{run_id}-e1": f"{run_id}-C1", f"{run_id}-e3": f"{run_id}-C5"}
