"""The notify service end to end on MemoryBus + PostgreSQL/SQLite + a real HTTP gateway,
driven on a virtual clock: outage notice after 5 minutes, restored, momentary, merged and
nested incidents, inferred restores, redelivered events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.parsing import parse_delivery
from schemas.topics import DELIVERIES
from tests.integration.notify.service_harness import Harness, SmsGateway, at, topology


@pytest.fixture
async def harness(notify_engine: AsyncEngine, gateway: SmsGateway) -> AsyncIterator[Harness]:
    topo = topology(6, critical=["C000006"])
    async with Harness(notify_engine, gateway, topo, operators=True) as h:
        yield h


class TestOutageNotices:
    async def test_notice_after_five_minutes_then_restored_once(self, harness: Harness) -> None:
        h, gw = harness, harness.gateway
        await h.publish(h.feed.event("INC1", "opened", 0, added=["C000001", "C000002"]))
        await h.run_until(4.9)
        assert gw.received == []  # not before the momentary threshold
        await h.run_until(5.1)
        assert len(gw.to("C000001")) == 1
        assert len(gw.to("C000002")) == 1
        assert "停电" in gw.to("C000001")[0]

        await h.publish(h.feed.event(
            "INC1", "restored", 60, status="restored",
            restored=[{"customer_id": "C000001", "restored_at": at(59).isoformat(),
                       "source": "meter"}, "C000002"],
        ))  # fmt: skip
        await h.clock.advance_to(at(60))
        await h.run_until(120)
        assert len(gw.to("C000001")) == 2
        assert "恢复供电" in gw.to("C000001")[1]
        assert len(gw.received) == 4
        deliveries = [parse_delivery(r.value) for r in h.bus.records(DELIVERIES)]
        assert sorted((d.customer_id, d.stage, d.status) for d in deliveries) == [
            ("C000001", "outage_detected", "sent"), ("C000001", "restored", "sent"),
            ("C000002", "outage_detected", "sent"), ("C000002", "restored", "sent"),
        ]  # fmt: skip
        assert await h.scalar("SELECT count(*) FROM notify.attempts") == 4
        assert await h.scalar(
            "SELECT stage FROM notify.last_message WHERE customer_id = 'C000001'"
        ) == "restored"

    async def test_momentary_sends_nothing(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("INC2", "opened", 0, added=["C000001", "C000003"]))
        await h.run_until(2)
        await h.publish(h.feed.event("INC2", "momentary", 3, status="momentary",
                                     restored=["C000001", "C000003"]))  # fmt: skip
        await h.clock.advance_to(at(3))
        await h.run_until(90)
        assert h.gateway.received == []
        statuses = {(j["customer_id"], j["stage"]): j["status"] for j in await h.jobs()}
        assert statuses == {("C000001", "outage_detected"): "cancelled",
                            ("C000003", "outage_detected"): "cancelled"}  # fmt: skip

    async def test_redelivered_event_after_crash_creates_no_second_job(
        self, harness: Harness
    ) -> None:
        h = harness
        opened = h.feed.event("INC3", "opened", 0, added=["C000001"])
        await h.publish(opened)
        await h.consume()
        # the same event again (incidents' relay re-published it after its own crash) ...
        await h.publish(opened)
        await h.consume()
        # ... and a restarted notify re-reading from stored offsets sees nothing new
        await h.restart()
        await h.consume()
        assert [(j["customer_id"], j["stage"]) for j in await h.jobs()] == [
            ("C000001", "outage_detected")
        ]
        await h.run_until(30)
        assert len(h.gateway.to("C000001")) == 1

    async def test_crash_before_commit_reapplies_the_batch_once(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("INC4", "opened", 0, added=["C000002"]))
        # a batch applied but never committed (the process died inside the transaction)
        from services.common.db import UnitOfWork
        from services.notify.handlers import apply_lifecycle

        records = h.bus.records("incidents.lifecycle.v1")
        async with UnitOfWork(h.sessions) as uow:
            await apply_lifecycle(uow, records, h.service._ctx)
        await h.restart()
        await h.consume()
        await h.consume()
        assert len(await h.jobs()) == 1
        assert await h.scalar("SELECT count(*) FROM notify.processed_events") == 1

    async def test_critical_customer_is_escalated_to_operators(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("INC5", "opened", 0, added=["C000006", "C000005"]))
        await h.run_until(10)
        assert [hook["customer_id"] for hook in h.gateway.hooks] == ["C000006"]
        assert await h.scalar("SELECT status FROM notify.escalations") == "sent"
        assert len(h.gateway.to("C000006")) == 1


class TestLinkedIncidents:
    async def test_merged_incident_does_not_renotify(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("INC-A", "opened", 0, added=["C000001", "C000002"]))
        await h.run_until(6)
        assert len(h.gateway.received) == 2
        # an upstream outage absorbs INC-A: its customers move to INC-B
        await h.publish(
            h.feed.event("INC-A", "merged", 20, status="merged", merged_into="INC-B"),
            h.feed.event("INC-B", "opened", 20, device_id="F01-BKR", added=[
                {"customer_id": "C000001", "moved_from": "INC-A",
                 "interrupted_at": at(0).isoformat()},
                {"customer_id": "C000002", "moved_from": "INC-A",
                 "interrupted_at": at(0).isoformat()},
                {"customer_id": "C000003", "interrupted_at": at(19).isoformat()},
            ]),
        )  # fmt: skip
        await h.clock.advance_to(at(20))
        await h.run_until(60)
        assert len(h.gateway.to("C000001")) == 1
        assert len(h.gateway.to("C000002")) == 1
        assert len(h.gateway.to("C000003")) == 1

    async def test_nested_outage_and_inferred_restores(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("INC-P", "opened", 0,
                                     added=["C000001", "C000002", "C000003"]))  # fmt: skip
        await h.run_until(6)
        assert len(h.gateway.received) == 3
        # re-energised at 40: C000001 by its meter; C000002, C000003 only by inference
        await h.publish(h.feed.event("INC-P", "restored", 40, status="restored", restored=[
            {"customer_id": "C000001", "source": "meter"},
            {"customer_id": "C000002", "source": "inferred"},
            {"customer_id": "C000003", "source": "inferred", "verified": False},
        ]))  # fmt: skip
        await h.clock.advance_to(at(40))
        await h.run_until(49)
        assert len(h.gateway.to("C000001")) == 2  # told restored
        assert len(h.gateway.to("C000002")) == 1  # inferred: not yet
        assert len(h.gateway.to("C000003")) == 1
        # the nested check at 50: C000003 is still out (nested incident), C000002 confirmed
        await h.publish(
            h.feed.event("INC-N", "opened", 50, parent_incident_id="INC-P", added=[
                {"customer_id": "C000003", "moved_from": "INC-P",
                 "interrupted_at": at(0).isoformat()},
            ]),
            h.feed.event("INC-P", "scope_changed", 50, restored=[
                {"customer_id": "C000002", "source": "inferred", "verified": True},
            ]),
        )  # fmt: skip
        await h.clock.advance_to(at(50))
        await h.run_until(80)
        assert len(h.gateway.to("C000002")) == 2
        assert "恢复供电" in h.gateway.to("C000002")[1]
        assert len(h.gateway.to("C000003")) == 1  # in the dark: neither restored nor re-told
        await h.publish(h.feed.event("INC-N", "restored", 90, status="restored",
                                     restored=[{"customer_id": "C000003", "source": "meter"}]))
        await h.clock.advance_to(at(90))
        await h.run_until(100)
        assert len(h.gateway.to("C000003")) == 2
        assert "恢复供电" in h.gateway.to("C000003")[1]
