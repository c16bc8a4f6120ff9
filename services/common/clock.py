"""Time as a port: the wall clock in production, a virtual clock in replay and tests.

Domain code never calls ``datetime.now()``; it is handed a :class:`Clock`. Timer-driven
components (confirmation dwell, nested-outage check, SLA deadlines, notification retries)
expose ``async def run_due() -> datetime | None`` — do what is due at ``clock.now()`` and
return the next wake-up — so the same code runs under the wall clock (a loop sleeping until
the next wake-up) and under the demo's virtual clock (the driver advances time to the next
wake-up or scenario line, whichever is first).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""
        ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that only moves when told to; sleepers wake in time order.

    ``advance_to`` moves time forward in steps, one per distinct wake-up time, and yields to
    the event loop after each step so woken tasks run before time moves on.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when.astimezone(UTC), next(self._seq), fut))
        await fut

    def next_wakeup(self) -> datetime | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def advance_to(self, when: datetime) -> None:
        when = when.astimezone(UTC)
        while (wake := self.next_wakeup()) is not None and wake <= when:
            self._now = max(self._now, wake)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
            for _ in range(3):  # let woken tasks (and what they schedule) run
                await asyncio.sleep(0)
        self._now = max(self._now, when)
