"""A sender round slower than its lease: another round took the job over, sent it and
recorded it; the slow round's outcome must neither overwrite that record nor fail its whole
group on the attempt's unique keys (the storm bench's notify died of exactly that)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics import DELIVERIES
from services.common.db import UnitOfWork
from services.notify.outcomes import Outcome, OutcomeWriter
from services.notify.queue_repository import JobUpdate, QueueRepository
from tests.integration.notify.service_harness import Harness, SmsGateway, at, topology

LEASE = timedelta(minutes=2)


@pytest.fixture
async def harness(notify_engine: AsyncEngine, gateway: SmsGateway) -> AsyncIterator[Harness]:
    async with Harness(notify_engine, gateway, topology(2)) as h:
        yield h


async def claim(h: Harness, now: datetime) -> Any:
    async with UnitOfWork(h.sessions) as uow:
        (row,) = await QueueRepository(uow.session).claim(now, 10, LEASE)
        await uow.commit()
    return row


def sent(job_id: int, claimed_at: datetime, now: datetime, provider_id: str) -> Outcome:
    """What a round writes for a message the gateway accepted (first attempt)."""
    return Outcome(
        JobUpdate(job_id, claimed_at, "sent", None, 1, channel="sms", address="+86",
                  language="zh-CN", sent_at=now, provider_id=provider_id),
        attempt={"job_id": job_id, "n": 1, "at": now, "channel": "sms", "ok": True,
                 "retryable": False, "error": None, "provider_id": provider_id},
        delivery={"aggregate_id": f"job:{job_id}", "seq": 1, "topic": DELIVERIES,
                  "key": "C000001", "payload": orjson.dumps({"provider_id": provider_id}),
                  "created_at": now},
    )  # fmt: skip


class TestLostLease:
    async def test_the_slow_rounds_outcome_is_dropped_and_the_group_still_commits(
        self, harness: Harness
    ) -> None:
        h = harness
        await h.publish(h.feed.event("LL", "opened", 0, added=["C000001"]))
        await h.consume()
        slow = await claim(h, at(5))
        taken_over = await claim(h, at(5) + LEASE + timedelta(seconds=1))
        assert taken_over.id == slow.id
        writer = OutcomeWriter(h.sessions)
        later = at(5) + LEASE + timedelta(seconds=2)
        await writer.write([sent(slow.id, later - timedelta(seconds=1), later, "second")])

        await writer.write([sent(slow.id, at(5), later + timedelta(seconds=5), "first")])

        (job,) = await h.jobs()
        assert (job["status"], job["attempts"]) == ("sent", 1)
        assert await h.scalar("select provider_id from notify.jobs") == "second"
        assert await h.scalar("select count(*) from notify.attempts") == 1
        assert await h.scalar(
            f"select count(*) from notify.outbox where aggregate_id = 'job:{slow.id}'"
        ) == 1
