"""NotifyService under ``run_forever``: a lifecycle consumer that stops handing out records
while they wait is restarted by its watchdog (DESIGN 4), the restart is counted in
``outagedesk_bus_watchdog_restarts_total`` and the records are then applied."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from schemas.topics import LIFECYCLE
from services.common.bus.base import OutMessage
from services.common.clock import WallClock
from services.common.db import session_factory
from services.common.topology.model import Topology
from services.notify.entrypoints.service import NotifyService
from services.notify.service_settings import NotifyServiceSettings
from tests.integration.common.stalling_bus import StallingBus

RECORDS = 5


def restarts() -> float:
    return REGISTRY.get_sample_value("outagedesk_bus_watchdog_restarts_total",
                                     {"client": "notify"}) or 0.0  # fmt: skip


class TestNotifyWatchdog:
    async def test_a_stalled_consumer_is_restarted_and_catches_up(
        self, notify_engine: AsyncEngine
    ) -> None:
        sessions = session_factory(notify_engine)
        settings = NotifyServiceSettings(notify_poll_timeout_s=0.01)
        bus = StallingBus({settings.notify_group_id})
        service = NotifyService(settings, bus, sessions, WallClock(),
                                Topology.build([], [], [], []), {}, stall_after_s=0.3)  # fmt: skip
        before = restarts()
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        await service.start()
        try:
            producer = await bus.producer()
            # unreadable events: dead-lettered and their offsets stored, which is all the
            # watchdog is about
            await producer.send([OutMessage(LIFECYCLE, b"not json", b"k") for _ in range(RECORDS)])
            with capture_logs() as logs:
                task = asyncio.create_task(service.run_forever(stop))
                async with asyncio.timeout(15):
                    while await stored_offset(notify_engine) < RECORDS:  # noqa: ASYNC110 - polls the DB
                        await asyncio.sleep(0.05)
        finally:
            stop.set()
            if task is not None:
                await task
            await service.stop()
            await bus.close()
        assert bus.created[settings.notify_group_id] == 2
        assert restarts() - before == 1
        assert any("restarting it" in e["event"] for e in logs)


async def stored_offset(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        total = await conn.scalar(
            sa.text("select coalesce(sum(next_offset), 0) from notify.consumer_offsets "
                    "where topic = :t"),
            {"t": LIFECYCLE},
        )  # fmt: skip
    return int(total or 0)
