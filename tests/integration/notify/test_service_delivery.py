"""The notify sender against a real HTTP gateway on a virtual clock: quiet hours, throttle,
retries then failure, opt-out, rate limits, a sender killed between the gateway's answer
and its commit, and inbound SMS replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.parsing import parse_delivery
from schemas.topics import CUSTOMER_REPORTS, DELIVERIES
from services.common.db import UnitOfWork
from services.notify import orm
from services.notify.entrypoints.run import http_app
from services.notify.queue_repository import JobUpdate, QueueRepository
from services.notify.repository import from_db
from tests.integration.notify.service_harness import Harness, SmsGateway, at, phone, topology

# C000004 sleeps 09:00-12:00 local (01:00-04:00 UTC); C000006 too, but is critical.
TOPOLOGY = topology(6, critical=["C000006"], quiet={"C000004": "09:00-12:00",
                                                    "C000006": "09:00-12:00"})  # fmt: skip


@pytest.fixture
async def harness(notify_engine: AsyncEngine, gateway: SmsGateway) -> AsyncIterator[Harness]:
    async with Harness(notify_engine, gateway, TOPOLOGY) as h:
        yield h


async def sent_at_minutes(h: Harness, customer_id: str) -> list[float]:
    t = orm.jobs
    async with h.engine.connect() as conn:
        rows = await conn.execute(
            select(t.c.sent_at)
            .where(t.c.customer_id == customer_id, t.c.status == "sent")
            .order_by(t.c.sent_at)
        )
        times = [from_db(value) for (value,) in rows]
    return [(value - at(0)).total_seconds() / 60 for value in times if value is not None]


class TestPreferences:
    async def test_quiet_hours_defer_except_critical_and_restored(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("Q1", "opened", 0,
                                     added=["C000004", "C000006", "C000005"]))  # fmt: skip
        await h.run_until(30)
        assert len(h.gateway.to("C000005")) == 1
        assert len(h.gateway.to("C000006")) == 1  # critical: quiet hours do not apply
        assert h.gateway.to("C000004") == []  # asleep until 12:00 local = at(120)
        await h.publish(h.feed.event("Q1", "restored", 60, status="restored",
                                     restored=["C000004", "C000005", "C000006"]))  # fmt: skip
        await h.clock.advance_to(at(60))
        await h.run_until(119)
        # restored is sent at once, even in quiet hours; the stale outage notice is dropped
        assert len(h.gateway.to("C000004")) == 1
        assert "恢复供电" in h.gateway.to("C000004")[0]
        await h.run_until(180)
        assert len(h.gateway.to("C000004")) == 1

    async def test_throttle_one_message_per_30_minutes(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("TH", "opened", 0, added=["C000001"]))
        await h.run_until(6)
        await h.publish(h.feed.event("TH", "etr_set", 10, etr=at(240)))
        await h.clock.advance_to(at(10))
        await h.run_until(34)
        assert len(h.gateway.to("C000001")) == 1
        await h.run_until(40)
        assert len(h.gateway.to("C000001")) == 2
        first, second = await sent_at_minutes(h, "C000001")
        assert second - first >= 30

    async def test_opted_out_customer_gets_nothing(self, harness: Harness) -> None:
        h = harness
        async with UnitOfWork(h.sessions) as uow:
            await QueueRepository(uow.session).set_opt_out("C000003", at(0), "sms:TD")
            await uow.commit()
        await h.publish(h.feed.event("OO", "opened", 0, added=["C000003", "C000002"]))
        await h.run_until(20)
        assert h.gateway.to("C000003") == []
        assert len(h.gateway.to("C000002")) == 1
        jobs = {j["customer_id"]: j for j in await h.jobs()}
        assert (jobs["C000003"]["status"], jobs["C000003"]["last_error"]) == (
            "cancelled", "opted_out")


class TestRetries:
    async def test_retry_on_503_then_fail_on_400(self, harness: Harness) -> None:
        h = harness
        h.gateway.script(phone("C000001"), [503, 503, 400])
        await h.publish(h.feed.event("RT", "opened", 0, added=["C000001"]))
        await h.run_until(5.5)
        assert len(h.gateway.to("C000001")) == 1  # 503: retry after 1 min
        await h.run_until(6.5)
        assert len(h.gateway.to("C000001")) == 2  # 503: retry after 2 min
        await h.run_until(7.9)
        assert len(h.gateway.to("C000001")) == 2
        await h.run_until(60)
        assert len(h.gateway.to("C000001")) == 3  # 400: permanent
        (job,) = await h.jobs()
        assert (job["status"], job["attempts"]) == ("failed", 3)
        (delivery,) = [parse_delivery(r.value) for r in h.bus.records(DELIVERIES)]
        assert (delivery.status, delivery.attempts) == ("failed", 3)
        assert delivery.error is not None
        assert "400" in delivery.error

    async def test_eight_attempts_then_failed(self, harness: Harness) -> None:
        h = harness
        h.gateway.script(phone("C000002"), [503] * 20)
        await h.publish(h.feed.event("R8", "opened", 0, added=["C000002"]))
        # backoff 1, 2, 4, 8, 16, 32, 60 minutes after the first attempt at minute 5
        await h.run_until(5 + 123 - 1)
        assert len(h.gateway.to("C000002")) == 7
        await h.run_until(5 + 123 + 1)
        assert len(h.gateway.to("C000002")) == 8
        await h.run_until(400)
        assert len(h.gateway.to("C000002")) == 8
        (job,) = await h.jobs()
        assert (job["status"], job["attempts"]) == ("failed", 8)
        assert await h.scalar("SELECT count(*) FROM notify.attempts") == 8


class TestRateLimit:
    async def test_token_bucket_paces_on_the_virtual_clock(
        self, notify_engine: AsyncEngine, gateway: SmsGateway
    ) -> None:
        rates = {"sms": (2.0, 2.0)}
        async with Harness(notify_engine, gateway, topology(10), channel_rates=rates) as h:
            await h.publish(h.feed.event("RL", "opened", 0,
                                         added=[f"C{i:06d}" for i in range(1, 11)]))
            await h.run_until(5)
            assert len(gateway.received) == 2  # the burst
            await h.run_until(5 + 2 / 60)  # 2 s at 2/s: 4 more
            assert 5 <= len(gateway.received) <= 6
            await h.run_until(6)
            assert len(gateway.received) == 10
            times: list[float] = []
            for i in range(1, 11):
                times.extend(await sent_at_minutes(h, f"C{i:06d}"))
            assert (max(times) - min(times)) * 60 >= 3.9  # 8 messages after the burst at 2/s


class SimulatedCrash(Exception):
    """The process dies after the gateway answered, before the outcome commit."""


class TestCrashWindow:
    async def test_killed_sender_resends_at_most_that_one_message(
        self, notify_engine: AsyncEngine, gateway: SmsGateway
    ) -> None:
        async def die_once(updates: Sequence[JobUpdate]) -> None:
            if any(u.status == "sent" for u in updates):
                raise SimulatedCrash

        async with Harness(notify_engine, gateway, TOPOLOGY, before_commit=die_once) as h:
            await h.publish(h.feed.event("CR", "opened", 0, added=["C000001"]))
            await h.consume()
            await h.clock.advance_to(at(5))
            with pytest.raises(ExceptionGroup) as crashed:
                await h.service.run_due()
            assert crashed.group_contains(SimulatedCrash)
            assert len(gateway.to("C000001")) == 1
            (job,) = await h.jobs()
            assert job["status"] == "sending"  # nothing of the outcome was committed

            await h.restart()  # a new sender process, no fault
            await h.run_until(5 + 1.9)  # inside the 2-minute lease: nobody touches it
            assert len(gateway.to("C000001")) == 1
            await h.run_until(8)
            assert len(gateway.to("C000001")) == 2  # the one admitted duplicate
            await h.run_until(60)
            assert len(gateway.to("C000001")) == 2
            (job,) = await h.jobs()
            assert (job["status"], job["attempts"]) == ("sent", 1)
            assert h.service.sender.reclaimed == 1
            assert gateway.references() == ["CR:C000001:outage_detected:0"] * 2
            windows = h.service.sender.commit_windows_s
            assert windows
            assert max(windows) < 1.0
            print(f"answer->commit window: max {max(windows) * 1000:.1f} ms")  # noqa: T201


class TestInboundReplies:
    async def test_reply_1_after_restored_reports_still_out(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("IN", "opened", 0, added=["C000002"]))
        await h.run_until(6)
        await h.publish(h.feed.event("IN", "restored", 30, status="restored",
                                     restored=["C000002"]))  # fmt: skip
        await h.clock.advance_to(at(30))
        await h.run_until(40)
        assert len(h.gateway.to("C000002")) == 2
        transport = httpx.ASGITransport(app=http_app(h.service))
        async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
            answer = await client.post("/inbound/sms", json={
                "from": phone("C000002"), "text": "１", "received_at": at(41).isoformat()})
            unknown = await client.post("/inbound/sms", json={
                "from": "+10000000000", "text": "1", "received_at": at(41).isoformat()})
            health = await client.get("/healthz")
        assert answer.status_code == 202, answer.text
        assert unknown.status_code == 404
        assert health.status_code == 200
        (record,) = h.bus.records(CUSTOMER_REPORTS)
        report = orjson.loads(record.value)
        assert (report["customer_id"], report["kind"], report["incident_id"]) == (
            "C000002", "still_out", "IN")
        assert record.key == b"C000002"
