"""Retry backoff, the job state machine and per-channel token buckets on virtual time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.common.clock import VirtualClock
from services.notify.domain.job_state import InvalidTransition, Job, JobStatus
from services.notify.domain.model import JobSpec
from services.notify.domain.retry import RetryPolicy
from services.notify.domain.token_bucket import ChannelRateLimiter, TokenBucket

T0 = datetime(2026, 7, 14, tzinfo=UTC)
MIN = timedelta(minutes=1)


def job() -> Job:
    return Job.new(JobSpec("I1", "C1", "outage_detected", 0, T0))


class TestRetryPolicy:
    def test_backoff_doubles_from_one_minute_capped_at_one_hour_eight_attempts(self) -> None:
        assert RetryPolicy().schedule() == [MIN * m for m in (1, 2, 4, 8, 16, 32, 60)]

    def test_eighth_failure_gives_up(self) -> None:
        policy = RetryPolicy()
        assert policy.next_attempt_at(7, T0) == T0 + 60 * MIN
        assert policy.next_attempt_at(8, T0) is None


class TestJobStateMachine:
    def test_retry_then_failed_after_eight_attempts(self) -> None:
        policy, j, now = RetryPolicy(), job(), T0
        waits = []
        while j.status is not JobStatus.FAILED:
            j = j.claim(now).attempt_failed(now, "503", retryable=True, policy=policy)
            if j.status is JobStatus.RETRY:
                assert j.due_at is not None
                waits.append(j.due_at - now)
                now = j.due_at
        assert (j.attempts, len(waits), j.last_error) == (8, 7, "503")

    def test_permanent_error_fails_at_once(self) -> None:
        j = job().claim(T0).attempt_failed(T0, "400", retryable=False, policy=RetryPolicy())
        assert (j.status, j.attempts) == (JobStatus.FAILED, 1)

    def test_sent_records_channel_and_provider_id(self) -> None:
        j = job().claim(T0).succeeded(T0, "sms", "p-1")
        assert (j.status, j.channel, j.provider_id, j.attempts) == (JobStatus.SENT, "sms", "p-1", 1)

    def test_defer_is_not_an_attempt(self) -> None:
        j = job().claim(T0).defer(T0 + 30 * MIN, "throttle")
        assert (j.status, j.attempts, j.is_due(T0), j.is_due(T0 + 30 * MIN)) == (
            JobStatus.PENDING, 0, False, True,
        )  # fmt: skip

    def test_cannot_claim_before_due_or_touch_a_finished_job(self) -> None:
        with pytest.raises(InvalidTransition):
            job().claim(T0 - MIN)
        sent = job().claim(T0).succeeded(T0, "sms", None)
        with pytest.raises(InvalidTransition):
            sent.cancel("late", T0)
        with pytest.raises(InvalidTransition):
            job().succeeded(T0, "sms", None)

    def test_cancel_pending_retry_or_sending(self) -> None:
        retrying = job().claim(T0).attempt_failed(T0, "x", retryable=True, policy=RetryPolicy())
        for j in (job(), job().claim(T0), retrying):
            cancelled = j.cancel("incident_momentary", T0)
            assert (cancelled.status, cancelled.is_due(T0 + MIN)) == (JobStatus.CANCELLED, False)


class TestTokenBucket:
    def test_burst_then_rate_on_virtual_time(self) -> None:
        clock = VirtualClock(T0)
        bucket = TokenBucket(rate=2.0, capacity=3, clock=clock)
        assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
        assert bucket.available_at() == T0 + timedelta(seconds=0.5)
        asyncio.run(clock.advance_to(T0 + timedelta(seconds=0.5)))
        assert bucket.try_acquire()
        assert not bucket.try_acquire()

    def test_refill_is_capped_at_capacity(self) -> None:
        clock = VirtualClock(T0)
        bucket = TokenBucket(rate=1.0, capacity=2, clock=clock)
        asyncio.run(clock.advance_to(T0 + timedelta(hours=1)))
        assert bucket.tokens == 2

    async def test_acquire_waits_on_the_virtual_clock(self) -> None:
        clock = VirtualClock(T0)
        bucket = TokenBucket(rate=0.1, capacity=1, clock=clock)
        assert bucket.try_acquire()
        waiter = asyncio.create_task(bucket.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()
        await clock.advance_to(T0 + timedelta(seconds=10))
        await asyncio.wait_for(waiter, 1)
        assert clock.now() == T0 + timedelta(seconds=10)

    def test_a_round_pays_up_front_and_gives_back_what_it_did_not_use(self) -> None:
        clock = VirtualClock(T0)
        bucket = TokenBucket(rate=10.0, capacity=5, clock=clock)
        assert bucket.take_up_to(8) == 5  # only what is there, whole tokens
        assert not bucket.try_acquire()
        asyncio.run(clock.advance_to(T0 + timedelta(seconds=0.25)))  # refills meanwhile
        assert bucket.take_up_to(8) == 2
        bucket.give_back(2)
        bucket.give_back(4)
        assert bucket.tokens == 5  # never above capacity

    def test_channels_are_limited_separately(self) -> None:
        clock = VirtualClock(T0)
        limiter = ChannelRateLimiter({"sms": (1.0, 1), "email": (1.0, 1)}, clock)
        assert [limiter.try_acquire("sms"), limiter.try_acquire("sms")] == [True, False]
        assert limiter.try_acquire("email")
        assert limiter.try_acquire("webhook")
        assert limiter.try_acquire("webhook")
        assert limiter.available_at("sms") == T0 + timedelta(seconds=1)
