"""What a claimed job became, and the transaction that records it (the sender's second).

An :class:`Outcome` carries every row one job's round writes: the job's new state, the
attempt (when a gateway was asked), the customer's ``last_message`` (when sent), the
delivery outcome for ``notify.deliveries.v1`` (sent or finally failed) and a critical
customer's escalation. :class:`OutcomeWriter` writes a group of them in one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog

from schemas.topics import DELIVERIES
from services.common.db import UnitOfWork
from services.notify.channels.base import DeliveryResult
from services.notify.domain.job_state import Job
from services.notify.domain.model import JobKey
from services.notify.domain.retry import RetryPolicy
from services.notify.pg_outcomes import update_claimed_jobs, write_outcome_rows
from services.notify.queue_repository import JobUpdate, QueueRepository

log = structlog.get_logger(__name__)

BeforeCommit = Callable[[Sequence[JobUpdate]], Awaitable[None]]


@dataclass(slots=True)
class Outcome:
    update: JobUpdate | None = None
    attempt: dict[str, Any] | None = None
    last_message: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None
    escalation: dict[str, Any] | None = None
    answered: float | None = None  # monotonic time of the gateway's answer
    cancelled: JobKey | None = None  # the job this outcome cancels
    sent: JobKey | None = None  # the job this outcome records as sent


@dataclass(frozen=True, slots=True)
class Sending:
    """A job on its way to a gateway (what :func:`sent_or_failed` needs to know)."""

    job_id: int
    job: Job  # status ``sending``
    claimed_at: datetime
    channel: str
    address: str
    language: str
    body: str


def release(row: Any, claimed_at: datetime, at: datetime, reason: str) -> Outcome:
    """Back to the queue at ``at`` (quiet hours, throttle, rate limit): not an attempt."""
    status = "retry" if row.attempts else "pending"
    return Outcome(JobUpdate(row.id, claimed_at, status, at, row.attempts, last_error=reason))


def cancelled(row: Any, claimed_at: datetime, reason: str) -> Outcome:
    """Not worth sending any more (momentary, restored meanwhile, opted out, ...)."""
    key = JobKey(row.incident_id, row.customer_id, row.stage, int(row.revision))
    return Outcome(JobUpdate(row.id, claimed_at, "cancelled", None, row.attempts,
                             last_error=reason), cancelled=key)  # fmt: skip


def sent_or_failed(
    s: Sending, result: DeliveryResult, now: datetime, retry: RetryPolicy
) -> Outcome:
    """The outcome of one gateway answer: sent, retry later, or failed for good."""
    if result.ok:
        job = s.job.succeeded(now, s.channel, result.provider_id)
    else:
        job = s.job.attempt_failed(
            now, result.error or "error", retryable=result.retryable, policy=retry
        )
    spec = job.spec
    update = JobUpdate(
        s.job_id, s.claimed_at, job.status.value, job.due_at, job.attempts, s.channel,
        s.address, s.language, now if result.ok else None, job.last_error, job.provider_id,
    )  # fmt: skip
    attempt = {
        "job_id": s.job_id, "n": job.attempts, "at": now, "channel": s.channel,
        "ok": result.ok, "retryable": result.retryable, "error": result.error,
        "provider_id": result.provider_id,
    }  # fmt: skip
    outcome = Outcome(update, attempt)
    if job.status.value == "sent":
        outcome.sent = spec.key
    if result.ok:
        outcome.last_message = {
            "customer_id": spec.customer_id, "at": now, "stage": spec.stage,
            "incident_id": spec.incident_id, "channel": s.channel, "body": s.body,
        }  # fmt: skip
    if job.status.value in ("sent", "failed"):
        outcome.delivery = _delivery_row(s, job, now)
    return outcome


def _delivery_row(s: Sending, job: Job, now: datetime) -> dict[str, Any]:
    spec = job.spec
    payload: dict[str, Any] = {
        "customer_id": spec.customer_id, "incident_id": spec.incident_id,
        "job_id": str(s.job_id), "stage": spec.stage, "channel": s.channel,
        "status": job.status.value, "attempts": job.attempts,
        "occurred_at": now.isoformat(), "error": job.last_error,
    }  # fmt: skip
    return {
        "aggregate_id": f"job:{s.job_id}", "seq": job.attempts, "topic": DELIVERIES,
        "key": spec.customer_id, "payload": orjson.dumps(payload), "created_at": now,
    }  # fmt: skip


class OutcomeWriter:
    """Writes a group of outcomes in one transaction."""

    def __init__(
        self,
        sessions: Any,
        before_commit: BeforeCommit | None = None,
        on_committed: Callable[[], None] | None = None,
        on_cancelled: Callable[[Sequence[JobKey]], None] | None = None,
        on_sent: Callable[[Sequence[JobKey]], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._before_commit = before_commit
        self._on_committed = on_committed
        self._on_cancelled = on_cancelled
        self._on_sent = on_sent

    async def write(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Record ``outcomes`` in one transaction; the ones recorded (those whose job this
        sender still held)."""
        updates = [o.update for o in outcomes if o.update is not None]
        async with UnitOfWork(self._sessions) as uow:
            repo = QueueRepository(uow.session)
            postgres = uow.session.get_bind().dialect.name == "postgresql"
            kept = await (update_claimed_jobs(uow.session, updates) if postgres
                          else repo.record(updates))  # fmt: skip
            outcomes = _still_claimed(outcomes, kept)
            attempts = [o.attempt for o in outcomes if o.attempt]
            last = [o.last_message for o in outcomes if o.last_message]
            deliveries = [o.delivery for o in outcomes if o.delivery]
            if postgres:
                await write_outcome_rows(uow.session, attempts, last, deliveries)
            else:
                await repo.add_attempts(attempts)
                await repo.set_last_messages(last)
                await repo.add_outbox(deliveries)
            await repo.finish_escalations([o.escalation for o in outcomes if o.escalation])
            if self._before_commit is not None:
                # A test seam: raising here is a sender dying after the gateway answered.
                await self._before_commit(updates)
            await uow.commit()
        if self._on_committed is not None and any(o.delivery for o in outcomes):
            self._on_committed()
        if self._on_cancelled is not None:
            keys = [o.cancelled for o in outcomes if o.cancelled is not None]
            if keys:
                self._on_cancelled(keys)
        if self._on_sent is not None:
            keys = [o.sent for o in outcomes if o.sent is not None]
            if keys:
                self._on_sent(keys)
        return outcomes


def _still_claimed(outcomes: Sequence[Outcome], kept: set[int]) -> list[Outcome]:
    """The outcomes whose job this sender still held. A round slower than the lease lost
    its jobs to another round, which sends and records them (the admitted duplicate); this
    round's attempt, last message and delivery rows would record the same attempt number a
    second time (and fail the whole group on the unique keys)."""
    lost = [o.update.job_id for o in outcomes
            if o.update is not None and o.update.job_id not in kept]  # fmt: skip
    if lost:
        log.warning("outcomes of jobs whose lease ran out not recorded", jobs=lost[:20],
                    count=len(lost))
    return [o for o in outcomes if o.update is None or o.update.job_id in kept]
