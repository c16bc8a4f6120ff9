"""IncidentsService under ``run_forever``: a signals or deliveries consumer that stops
handing out records while they wait is restarted by its watchdog (DESIGN 4), the restart is
counted in ``outagedesk_bus_watchdog_restarts_total`` and the records are then applied."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from services.common.bus.base import OutMessage
from services.common.clock import WallClock
from services.common.topology.model import Topology
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.settings import IncidentsSettings
from tests.integration.common.stalling_bus import StallingBus

RECORDS = 5


def restarts(client: str) -> float:
    return REGISTRY.get_sample_value("outagedesk_bus_watchdog_restarts_total",
                                     {"client": client}) or 0.0  # fmt: skip


class TestIncidentsWatchdogs:
    @pytest.mark.parametrize(
        ("group", "client", "topic"),
        [
            ("incidents", "incidents", "grid.signals.v1"),
            ("incidents-deliveries", "incidents-deliveries", "notify.deliveries.v1"),
        ],
    )
    async def test_a_stalled_consumer_is_restarted_and_catches_up(
        self, make_sessions: Callable[[int], Any], group: str, client: str, topic: str
    ) -> None:
        sessions = await make_sessions(0)
        bus = StallingBus({group})
        settings = IncidentsSettings(incidents_poll_timeout_s=0.01)
        service = IncidentsService(settings, bus, sessions, WallClock(),
                                   Topology.build([], [], [], []), stall_after_s=0.3)  # fmt: skip
        before = restarts(client)
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        await service.start()
        try:
            producer = await bus.producer()
            # unreadable records: applied (signals dead-lettered, deliveries skipped) and
            # their offsets stored, which is all the watchdog is about
            await producer.send([OutMessage(topic, b"not json", b"k") for _ in range(RECORDS)])
            with capture_logs() as logs:
                task = asyncio.create_task(service.run_forever(stop))
                async with asyncio.timeout(15):
                    while await stored_offset(sessions, group, topic) < RECORDS:  # noqa: ASYNC110 - polls the DB
                        await asyncio.sleep(0.05)
        finally:
            stop.set()
            if task is not None:
                await task
            await service.stop()
            await bus.close()
        assert bus.created[group] == 2
        assert restarts(client) - before == 1
        assert any("restarting it" in e["event"] for e in logs)


async def stored_offset(sessions: Any, group: str, topic: str) -> int:
    async with sessions() as session:
        total = await session.scalar(
            sa.text("select coalesce(sum(next_offset), 0) from incidents.consumer_offsets "
                    "where group_id = :g and topic = :t"),
            {"g": group, "t": topic},
        )  # fmt: skip
    return int(total or 0)
