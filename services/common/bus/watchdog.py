"""Restart a consumer (or producer) that stopped making progress while work is waiting.

aiokafka can stall after a broker restart (aio-libs/aiokafka#1154): ``getmany`` keeps
returning nothing although the partitions have records. The consumer loop feeds a
:class:`ProgressWatchdog` after every poll with how many records it processed and the
current lag; when nothing was processed for ``stall_after_s`` while lag stayed above zero,
``observe`` answers True, the loop recreates its client and calls ``restarted()``, which
counts the restart in ``outagedesk_bus_watchdog_restarts_total{client}``.

Pure logic with an injected monotonic clock, so it is tested without a broker or sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter

WATCHDOG_RESTARTS = Counter(
    "outagedesk_bus_watchdog_restarts_total",
    "Bus clients restarted by the watchdog because they made no progress while lagging.",
    ["client"],
)


class ProgressWatchdog:
    """Detects a stalled bus client: no progress for ``stall_after_s`` while lag > 0."""

    def __init__(
        self,
        client: str,
        stall_after_s: float = 60.0,
        *,
        now: Callable[[], float] = time.monotonic,
        restarts: Counter = WATCHDOG_RESTARTS,
    ) -> None:
        if stall_after_s <= 0:
            raise ValueError("stall_after_s must be positive")
        self.client = client
        self.stall_after_s = stall_after_s
        self._now = now
        self._restarts = restarts
        self._last_progress = now()
        self.lag = 0

    def observe(self, processed: int, lag: int) -> bool:
        """Record one poll: ``processed`` records handled since the last call and the
        current ``lag``. Returns True when the client should be restarted now."""
        now = self._now()
        self.lag = lag
        # An idle client (nothing waiting) is healthy however long it waits, so idle time
        # counts as progress too.
        if processed > 0 or lag <= 0:
            self._last_progress = now
            return False
        return now - self._last_progress >= self.stall_after_s

    def stalled_for(self) -> float:
        """Seconds since the last progress (or idle observation)."""
        return self._now() - self._last_progress

    def restarted(self) -> None:
        """The caller recreated its client: count it and give the new client a full window."""
        self._restarts.labels(client=self.client).inc()
        self._last_progress = self._now()
