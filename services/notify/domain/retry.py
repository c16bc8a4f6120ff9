"""Retry schedule for failed sends: exponential backoff 1 min → 1 h, 8 attempts.

Attempt n (1-based) that fails is followed by attempt n+1 after
``min(initial · factor^(n-1), maximum)``: 1, 2, 4, 8, 16, 32, 60 minutes. The eighth failed
attempt marks the job ``failed``. Deterministic (no jitter): the senders claim jobs from
PostgreSQL one at a time, so retries of different jobs are already spread by their own
due times, and a deterministic schedule is testable on virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: timedelta = timedelta(minutes=1)
    maximum: timedelta = timedelta(hours=1)
    factor: float = 2.0
    max_attempts: int = 8

    def delay_after(self, attempts: int) -> timedelta | None:
        """Wait before the next attempt once ``attempts`` have failed; ``None``: give up."""
        if attempts < 1:
            raise ValueError("attempts counts failed attempts and starts at 1")
        if attempts >= self.max_attempts:
            return None
        delay = self.initial * (self.factor ** (attempts - 1))
        return min(delay, self.maximum)

    def next_attempt_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failures at ``now``; ``None``: give up."""
        delay = self.delay_after(attempts)
        return None if delay is None else now + delay

    def schedule(self) -> list[timedelta]:
        """Every wait between attempts, in order (``max_attempts - 1`` entries)."""
        return [d for n in range(1, self.max_attempts) if (d := self.delay_after(n)) is not None]
