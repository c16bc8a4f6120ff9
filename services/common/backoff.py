"""Capped exponential backoff for loops that wait out a database or broker outage."""

from __future__ import annotations

import random

from sqlalchemy.exc import SQLAlchemyError

from services.common.bus.base import BusError

# What a loop waits out instead of crashing: the database or the broker being unreachable
# or refusing for a while. Anything else is a bug and propagates.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    BusError,
    OSError,
    TimeoutError,
)


class Backoff:
    def __init__(
        self, initial_s: float = 0.2, max_s: float = 30.0, factor: float = 2.0, jitter: float = 0.2
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows with each consecutive failure."""
        base = min(self.max_s, self.initial_s * self.factor**self.failures)
        self.failures += 1
        # Jitter spreads the retries of many consumers after a shared outage.
        return base * (1 + self.jitter * (2 * random.random() - 1))  # noqa: S311

    def reset(self) -> None:
        self.failures = 0
