"""Start-up of a served process: a retryable failure is undone and tried again until it
succeeds; a stop request ends the waiting; anything else is a real error and propagates."""

from __future__ import annotations

import asyncio

import pytest

from services.common.bus.base import BusError
from services.common.serving import retry_until_stopped


class Flaky:
    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or BusError("broker not there yet")
        self.calls = 0
        self.undone = 0

    async def start(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error

    async def undo(self) -> None:
        self.undone += 1


class TestRetryUntilStopped:
    async def test_retryable_failures_are_undone_and_retried_until_it_starts(self) -> None:
        flaky = Flaky(failures=2)
        await retry_until_stopped(flaky.start, asyncio.Event(), "start", undo=flaky.undo)
        assert (flaky.calls, flaky.undone) == (3, 2)

    async def test_a_stop_request_ends_the_waiting(self) -> None:
        flaky = Flaky(failures=10**6)
        stop = asyncio.Event()
        task = asyncio.create_task(retry_until_stopped(flaky.start, stop, "start"))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=1.0)
        assert 1 <= flaky.calls < 10

    async def test_a_programming_error_is_not_retried(self) -> None:
        flaky = Flaky(failures=1, error=ValueError("bad configuration"))
        with pytest.raises(ValueError, match="bad configuration"):
            await retry_until_stopped(flaky.start, asyncio.Event(), "start")
        assert flaky.calls == 1
