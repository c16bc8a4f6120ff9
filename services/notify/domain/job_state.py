"""The notification job state machine: pending → sending → sent | retry | failed | cancelled.

::

    pending ──claim──► sending ──ok──────────────► sent
       ▲  │              │ ├──retryable, attempts left──► retry ──claim──► sending
       │  │              │ └──permanent / attempts spent──► failed
       │  └──cancel──► cancelled ◄──cancel── sending (re-check at send time) / retry
       └──defer── sending (quiet hours, throttle, rate limit: not an attempt)

Each transition returns a new :class:`Job`; an impossible one raises
:class:`InvalidTransition`. Every attempt is counted on the job; the sender records each
attempt's outcome beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.notify.domain.model import JobSpec
from services.notify.domain.retry import RetryPolicy


class JobStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SENT, JobStatus.FAILED, JobStatus.CANCELLED})
CLAIMABLE = frozenset({JobStatus.PENDING, JobStatus.RETRY})


class InvalidTransition(Exception):
    """A job was asked to make a transition its status does not allow."""

    code = "invalid_job_transition"


@dataclass(frozen=True, slots=True)
class Job:
    """A notification job: its spec, status, next due time and attempts made."""

    spec: JobSpec
    status: JobStatus = JobStatus.PENDING
    due_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    provider_id: str | None = None
    channel: str | None = None
    finished_at: datetime | None = None
    cancel_reason: str | None = None

    @classmethod
    def new(cls, spec: JobSpec) -> Job:
        """A pending job due at its spec's ``due_at``."""
        return cls(spec=spec, due_at=spec.due_at)

    def is_due(self, now: datetime) -> bool:
        """True when the job may be claimed at ``now``."""
        return self.status in CLAIMABLE and self.due_at is not None and self.due_at <= now

    def claim(self, now: datetime) -> Job:
        """pending | retry → sending, only once due."""
        if not self.is_due(now):
            raise InvalidTransition(f"cannot claim a {self.status} job due {self.due_at}")
        return replace(self, status=JobStatus.SENDING)

    def defer(self, until: datetime, reason: str) -> Job:
        """sending → pending at ``until``; not an attempt (quiet hours, throttle, rate)."""
        self._require(JobStatus.SENDING, "defer")
        return replace(self, status=JobStatus.PENDING, due_at=until, last_error=reason)

    def cancel(self, reason: str, now: datetime) -> Job:
        """pending | retry | sending → cancelled (e.g. the outage turned out momentary)."""
        if self.status in TERMINAL:
            raise InvalidTransition(f"cannot cancel a {self.status} job")
        return replace(
            self, status=JobStatus.CANCELLED, cancel_reason=reason, finished_at=now, due_at=None
        )

    def succeeded(self, now: datetime, channel: str, provider_id: str | None) -> Job:
        """sending → sent after the gateway accepted the message."""
        self._require(JobStatus.SENDING, "succeed")
        return replace(
            self,
            status=JobStatus.SENT,
            attempts=self.attempts + 1,
            channel=channel,
            provider_id=provider_id,
            finished_at=now,
            due_at=None,
            last_error=None,
        )

    def attempt_failed(
        self, now: datetime, error: str, *, retryable: bool, policy: RetryPolicy
    ) -> Job:
        """sending → retry (with backoff) or failed (permanent error or attempts spent)."""
        self._require(JobStatus.SENDING, "fail")
        attempts = self.attempts + 1
        next_at = policy.next_attempt_at(attempts, now) if retryable else None
        if next_at is None:
            return replace(
                self,
                status=JobStatus.FAILED,
                attempts=attempts,
                last_error=error,
                finished_at=now,
                due_at=None,
            )
        return replace(
            self, status=JobStatus.RETRY, attempts=attempts, last_error=error, due_at=next_at
        )

    def _require(self, status: JobStatus, action: str) -> None:
        if self.status is not status:
            raise InvalidTransition(f"cannot {action} a {self.status} job")
