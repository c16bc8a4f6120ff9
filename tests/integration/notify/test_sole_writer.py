"""A sole-writer notify service (the demo's, or a single replica's) keeps its decision state
and its customers' last messages between batches and sender rounds: what it decides must be
what a service re-reading them every time decides, the throttle included, and a batch that
does not commit must leave nothing behind in what it keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.entrypoints import service as service_module
from services.notify.handlers import BatchResult
from tests.integration.notify.service_harness import Harness, SmsGateway, at, topology


@pytest.fixture(params=[False, True], ids=["shared", "sole_writer"])
async def harness(
    request: pytest.FixtureRequest, notify_engine: AsyncEngine, gateway: SmsGateway
) -> AsyncIterator[Harness]:
    async with Harness(notify_engine, gateway, topology(6), sole_writer=request.param) as h:
        yield h


class TestThrottleAcrossRounds:
    async def test_etr_after_the_notice_waits_for_the_throttle(self, harness: Harness) -> None:
        h, gw = harness, harness.gateway
        await h.publish(h.feed.event("INC1", "opened", 0, added=["C000001", "C000002"]))
        await h.run_until(6)
        assert len(gw.to("C000001")) == 1  # the outage notice at 5 min: a first round
        await h.publish(h.feed.event("INC1", "etr_set", 10, etr=at(240)))
        await h.clock.advance_to(at(10))
        await h.run_until(34)
        # the notice of a later round is what the throttle counts from (5 + 30 min)
        assert len(gw.to("C000001")) == 1
        await h.run_until(36)
        assert len(gw.to("C000001")) == 2
        assert len(gw.to("C000002")) == 2
        assert await h.scalar("SELECT count(*) FROM notify.attempts") == 4

    async def test_restored_customer_is_not_told_again(self, harness: Harness) -> None:
        h, gw = harness, harness.gateway
        await h.publish(h.feed.event("INC2", "opened", 0, added=["C000003"]))
        await h.run_until(6)
        await h.publish(h.feed.event("INC2", "restored", 20, status="restored",
                                     restored=["C000003"]))  # fmt: skip
        await h.clock.advance_to(at(20))
        await h.run_until(60)
        await h.publish(h.feed.event("INC3", "opened", 61, added=["C000003"]))
        await h.clock.advance_to(at(61))
        await h.run_until(70)
        # notice, restored (never throttled), then the new outage's notice (past the
        # throttle counted from the restored message)
        stages = await h.scalar("SELECT count(*) FROM notify.jobs WHERE status = 'sent'")
        assert stages == 3
        assert len(gw.to("C000003")) == 3


class TestToldInAnotherIncidentOfTheFamily:
    async def test_the_notice_sent_before_a_merge_cancels_the_other(self, harness: Harness) -> None:
        h = harness
        await h.publish(h.feed.event("INC4", "opened", 0, added=["C000004"]))
        await h.publish(h.feed.event("INC5", "opened", 1, added=[
            {"customer_id": "C000004", "interrupted_at": at(3).isoformat()}]))  # fmt: skip
        await h.run_until(6)  # INC4's notice went at 5; INC5's is due at 8
        await h.publish(h.feed.event("INC5", "merged", 6, status="merged", merged_into="INC4"))
        await h.clock.advance_to(at(6))
        await h.run_until(10)
        # the re-check sees the sent notice of the family (not merely the throttle)
        assert await h.scalar(
            "SELECT status || ':' || last_error FROM notify.jobs WHERE incident_id = 'INC5'"
        ) == "cancelled:already_told"
        assert len(h.gateway.to("C000004")) == 1


class TestKeptStateIsStored:
    async def test_later_batches_store_their_changes_to_earlier_interruptions(
        self, harness: Harness
    ) -> None:
        """A kept state saves only the interruptions of the incidents a batch touched:
        a restore, and a customer moved out of an incident (its ``moved_to``), must still
        reach the database when they change interruptions stored by earlier batches."""
        h = harness
        await h.publish(h.feed.event("INC8", "opened", 0, added=["C000001", "C000002"]))
        await h.consume()
        await h.publish(h.feed.event("INC9", "opened", 1, parent_incident_id="INC8", added=[
            {"customer_id": "C000002", "interrupted_at": at(0).isoformat(),
             "moved_from": "INC8"}]))  # fmt: skip
        await h.consume()
        stored = "SELECT incident_id || '/' || customer_id, restored_at IS NOT NULL, moved_to " \
                 "FROM notify.interruptions ORDER BY 1"  # fmt: skip
        assert await h.rows(stored) == [("INC8/C000001", False, None),
                                        ("INC8/C000002", False, "INC9"),
                                        ("INC9/C000002", False, None)]  # fmt: skip
        await h.publish(h.feed.event("INC8", "restored", 2, status="restored",
                                     restored=["C000001"]))  # fmt: skip
        await h.consume()
        assert await h.rows(stored) == [("INC8/C000001", True, None),
                                        ("INC8/C000002", False, "INC9"),
                                        ("INC9/C000002", False, None)]  # fmt: skip


class TestABatchThatDoesNotCommit:
    async def test_leaves_nothing_in_the_kept_state(
        self, notify_engine: AsyncEngine, gateway: SmsGateway, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The batch decides (the kept state records the incident's seq and its jobs), then
        its transaction fails. Were the kept state not dropped, the retry would find the
        event already applied there and create no job at all."""
        apply = service_module.apply_lifecycle
        failures = 1

        async def fails_once_after_deciding(*args: Any, **kwargs: Any) -> BatchResult:
            nonlocal failures
            result = await apply(*args, **kwargs)
            if failures:
                failures -= 1
                raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
            return result

        monkeypatch.setattr(service_module, "apply_lifecycle", fails_once_after_deciding)
        async with Harness(notify_engine, gateway, topology(6), sole_writer=True) as h:
            await h.publish(h.feed.event("INC1", "opened", 0, added=["C000001", "C000002"]))
            with pytest.raises(OperationalError):
                await h.consume()
            await h.run_until(6)
            assert [(j["customer_id"], j["stage"], j["status"]) for j in await h.jobs()] == [
                ("C000001", "outage_detected", "sent"), ("C000002", "outage_detected", "sent")]
            assert len(gateway.to("C000001")) == len(gateway.to("C000002")) == 1
