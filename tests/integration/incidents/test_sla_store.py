"""The SLA clock on PostgreSQL (``outagedesk_i3``): deadlines follow the incident, and
sla_at_risk / sla_breached are emitted exactly once each, also across restarts."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.topics import DELIVERIES
from services.common.bus.base import OutMessage
from services.common.bus.memory import MemoryBus
from services.common.db import create_engine, session_factory
from services.common.offsets import consumer_offsets_table
from services.incidents import orm
from services.incidents.quality_hooks import deliveries_consumer
from services.incidents.quality_orm import first_notices, sla_deadlines, sla_refresh_owed
from tests.integration.incidents.quality_harness import (
    Driver,
    at,
    device,
    fresh_database,
    lifecycle_events,
    rows,
)

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def db_url(pg_url: str) -> str:
    return asyncio.run(fresh_database(pg_url))


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def deadlines(sessions: Sessions) -> dict[str, tuple[str, bool, bool, bool]]:
    return {
        r.target: (r.status, r.at_risk_emitted, r.breached_emitted, r.completed)
        for r in await rows(sessions, sla_deadlines, sla_deadlines.c.target)
    }


class TestSlaClock:
    async def test_at_risk_and_breached_once_each_across_restarts(self, sessions: Sessions) -> None:
        first = Driver(sessions)
        await first.feed(device("d-open", "device_open", "F01-FU1", 0))
        (inc,) = await rows(sessions, orm.incidents)
        wake = await first.timers(1)
        assert wake == at(4)  # acknowledge: 80 % of 5 minutes
        assert (await deadlines(sessions))["acknowledge"] == ("on_track", False, False, False)

        await first.timers(4)
        restarted = Driver(sessions)  # fresh caches and hooks, same database
        await restarted.timers(4)
        await restarted.timers(4.5)
        await restarted.timers(5)
        again = Driver(sessions)
        await again.timers(5)
        await again.timers(6)

        events = await lifecycle_events(sessions)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # gapless
        emitted = [(e["type"], e["occurred_at"]) for e in events if e["type"].startswith("sla_")]
        assert emitted == [("sla_at_risk", at(4).isoformat()), ("sla_breached", at(5).isoformat())]
        assert events[-1]["incident"]["sla"]["acknowledge"] == "breached"
        assert (await deadlines(sessions))["acknowledge"] == ("breached", True, True, False)
        (row,) = await rows(sessions, orm.incidents)
        assert row.sla["acknowledge"] == "breached"
        assert row.seq == events[-1]["seq"]
        assert inc.id == row.id

    async def test_met_when_restored_in_time(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        await d.feed(device("d-open", "device_open", "F01-FU1", 0))
        (inc,) = await rows(sessions, orm.incidents)
        sent = {
            "customer_id": "C-T1-1", "incident_id": inc.id, "job_id": "j1",
            "stage": "outage_detected", "channel": "sms", "status": "sent", "attempts": 1,
            "occurred_at": at(10).isoformat(),
        }  # fmt: skip
        await d.timers(9)
        assert await d.deliveries(sent) == 1
        assert await d.deliveries(sent) == 0  # the same delivery again changes nothing
        await d.feed(device("d-close", "device_close", "F01-FU1", 30))
        await Driver(sessions).timers(10 * 60)  # long after every deadline, after a restart

        got = await deadlines(sessions)
        assert got["restore_overall"] == ("met", False, False, True)
        assert got["first_notice"] == ("met", False, False, True)
        assert got["on_site"][3] is True  # no crew needed any more: dropped, nothing owed
        types = Counter(e["type"] for e in await lifecycle_events(sessions))
        assert types["sla_at_risk"] == 1
        assert types["sla_breached"] == 1
        (row,) = await rows(sessions, orm.incidents)
        assert row.status == "restored"
        assert row.sla["restore_overall"] == "met"
        assert row.sla["first_notice"] == "met"
        (notice,) = await rows(sessions, first_notices)
        assert (notice.customer_id, notice.sent_at) == ("C-T1-1", at(10))

    async def test_next_wake_is_the_earliest_pending_deadline(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        await d.feed(device("d-open", "device_open", "F01-FU1", 0))
        assert await d.timers(0.5) == at(4)
        await d.timers(5)
        assert await d.timers(5.5) == at(12)  # first notice at risk next


class TestDeliveriesConsumer:
    async def test_first_notice_from_the_topic_and_offsets(self, sessions: Sessions) -> None:
        d = Driver(sessions)
        await d.feed(device("d-open", "device_open", "F01-FU1", 0))
        (inc,) = await rows(sessions, orm.incidents)
        bus = MemoryBus()
        try:
            await bus.create_topics([DELIVERIES])
            producer = await bus.producer()
            value = {
                "customer_id": "C-T1-2", "incident_id": inc.id, "job_id": "j1",
                "stage": "outage_detected", "channel": "sms", "status": "sent", "attempts": 1,
                "occurred_at": at(8).isoformat(),
            }  # fmt: skip
            failed = {**value, "customer_id": "C-T1-3", "status": "failed"}
            await producer.send(
                [OutMessage(DELIVERIES, orjson.dumps(v), b"C") for v in (value, failed, value)]
            )
            consumer = deliveries_consumer(bus, sessions, d.ctx, poll_timeout_s=0)
            await consumer.start()
            try:
                assert await consumer.run_once() == 3
            finally:
                await consumer.stop()
        finally:
            await bus.close()
        (notice,) = await rows(sessions, first_notices)
        assert (notice.customer_id, notice.sent_at) == ("C-T1-2", at(8))
        assert notice.stage == "outage_detected"
        assert (await deadlines(sessions))["first_notice"] == ("met", False, False, True)
        (offset,) = await rows(sessions, consumer_offsets_table("incidents"))
        assert (offset.group_id, offset.next_offset) == ("incidents-deliveries", 3)


class TestFirstNoticeOnAnotherConsumersFeeder:
    async def test_the_feeders_owner_refreshes_the_sla(self, sessions: Sessions) -> None:
        """The deliveries consumer of a process that does not hold the incident's signals
        partition neither locks nor saves the feeder (which would make its owner reload
        it): it owes the refresh, and the owner's next timer run applies it."""
        owner = Driver(sessions)  # F01's signals arrive on partition 0 (see Driver.feed)
        owner.ctx.owned_partitions = lambda: {0}
        await owner.feed(device("d-open", "device_open", "F01-FU1", 0))
        await owner.timers(9)
        (inc,) = await rows(sessions, orm.incidents)
        (feeder,) = await rows(sessions, orm.feeder_versions)
        other = Driver(sessions)
        other.ctx.owned_partitions = lambda: {1}
        sent = {
            "customer_id": "C-T1-1", "incident_id": inc.id, "job_id": "j1",
            "stage": "outage_detected", "channel": "sms", "status": "sent", "attempts": 1,
            "occurred_at": at(10).isoformat(),
        }  # fmt: skip
        await other.clock.advance_to(at(10))
        assert await other.deliveries(sent) == 1
        assert other.cache.tokens == {}  # never took the feeder
        assert await rows(sessions, orm.feeder_versions) == [feeder]
        assert [r.incident_id for r in await rows(sessions, sla_refresh_owed)] == [inc.id]
        assert (await deadlines(sessions))["first_notice"] == ("on_track", False, False, False)
        assert await other.timers(10.5) is None  # nothing of its own is due, ever
        assert len(await rows(sessions, sla_refresh_owed)) == 1

        assert await owner.timers(10.5) is not None
        assert await rows(sessions, sla_refresh_owed) == []
        # met, and neither at-risk (due at 12) nor breached emitted
        assert (await deadlines(sessions))["first_notice"] == ("met", False, False, True)
        (row,) = await rows(sessions, orm.incidents)
        assert row.sla["first_notice"] == "met"
        assert owner.hooks.owed_sla_refresh.refreshed == 1
