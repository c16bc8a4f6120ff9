"""IncidentsService wires the quality hooks: voltage incidents from its signals consumer, the
SLA clock's wake-ups in ``run_due``, first notices from ``notify.deliveries.v1`` in
``run_once`` (MemoryBus, virtual clock; PostgreSQL ``outagedesk_w_svc`` and SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.topics import DELIVERIES, SIGNALS
from services.common.bus.base import OutMessage
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.db import create_engine, session_factory
from services.common.migrate import migrate_engine
from services.common.offsets import consumer_offsets_table
from services.incidents import orm
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.quality_orm import first_notices
from services.incidents.settings import IncidentsSettings
from tests.integration.incidents.incidents_db import fresh_pg_database
from tests.integration.incidents.quality_harness import (
    T0,
    at,
    build_topology,
    customers_of,
    device,
    lifecycle_events,
    rows,
    voltage,
)

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        server = request.getfixturevalue("pg_url")
        return asyncio.run(fresh_pg_database(server, "outagedesk_w_svc"))
    return f"sqlite+aiosqlite:///{tmp_path / 'svc.db'}"


@pytest.fixture
async def service(
    db_url: str,
) -> AsyncIterator[tuple[IncidentsService, Sessions, MemoryBus, VirtualClock]]:
    engine = create_engine(db_url)
    clock = VirtualClock(T0)
    bus = MemoryBus(clock=clock)
    await migrate_engine(engine, schemas=["topology", "incidents"])
    sessions = session_factory(engine)
    settings = IncidentsSettings(incidents_poll_timeout_s=0)
    svc = IncidentsService(settings, bus, sessions, clock, build_topology())
    await svc.start()
    try:
        yield svc, sessions, bus, clock
    finally:
        await svc.stop()
        await bus.close()
        await engine.dispose()


async def publish(bus: MemoryBus, topic: str, *values: Any) -> None:
    producer = await bus.producer()
    await producer.send([OutMessage(topic, orjson.dumps(v), b"k") for v in values])


class TestServiceQualityWiring:
    async def test_sla_wake_voltage_incident_and_first_notice(
        self, service: tuple[IncidentsService, Sessions, MemoryBus, VirtualClock]
    ) -> None:
        svc, sessions, bus, clock = service
        signal = device("d-open", "device_open", "F01-FU1", 0).model_dump(mode="json")
        await publish(bus, SIGNALS, signal)
        assert await svc.run_once() == 1
        (outage,) = await rows(sessions, orm.incidents)
        assert await svc.run_due() == at(4)  # the SLA clock: acknowledge at risk

        t1 = customers_of("T1")
        for minutes in (15, 30):
            await clock.advance_to(at(minutes))
            readings = [
                voltage(f"v-{c}-{minutes}", c, minutes, 190.0).model_dump(mode="json")
                for c in t1[:2]
            ]
            await publish(bus, SIGNALS, *readings)
            assert await svc.run_once() == 2
        kinds = sorted(r.kind for r in await rows(sessions, orm.incidents))
        assert kinds == ["outage", "voltage"]

        sent = {
            "customer_id": "C-T1-1", "incident_id": outage.id, "job_id": "j1",
            "stage": "outage_detected", "channel": "sms", "status": "sent", "attempts": 1,
            "occurred_at": at(31).isoformat(),
        }  # fmt: skip
        await publish(bus, DELIVERIES, sent)
        assert await svc.run_once() == 1
        (notice,) = await rows(sessions, first_notices)
        assert (notice.incident_id, notice.customer_id) == (outage.id, "C-T1-1")
        offsets = {
            r.group_id: r.next_offset
            for r in await rows(sessions, consumer_offsets_table("incidents"))
        }
        assert offsets == {"incidents": 5, "incidents-deliveries": 1}

        await svc.run_due()
        types = [
            e["type"] for e in await lifecycle_events(sessions) if e["incident_id"] == outage.id
        ]
        assert types[:3] == ["opened", "confirmed", "sla_at_risk"]
        assert "sla_breached" in types
        # events recorded before the first SLA refresh still carry the refreshed statuses
        assert all(e["incident"]["sla"] for e in await lifecycle_events(sessions))
