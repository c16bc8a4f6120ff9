"""A shutdown step never hangs and never turns into a crash: ``shutdown_step`` bounds it in
time and swallows a CancelledError raised from inside it (aiokafka's stop() after a start()
that timed out), while a cancellation of the caller itself still propagates."""

from __future__ import annotations

import asyncio

import pytest

from services.common.bus.kafka import shutdown_step


async def _raises_cancelled() -> None:
    raise asyncio.CancelledError


async def _hangs() -> None:
    await asyncio.sleep(3600)


class TestShutdownStep:
    async def test_a_cancelled_error_from_inside_the_step_is_swallowed(self) -> None:
        await shutdown_step(_raises_cancelled(), 1.0, "stop")

    async def test_a_step_that_hangs_is_given_up_after_the_timeout(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await shutdown_step(_hangs(), 0.05, "stop")
        assert loop.time() - started < 1.0

    async def test_cancelling_the_caller_still_cancels_it(self) -> None:
        task = asyncio.create_task(shutdown_step(_hangs(), 60.0, "stop"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
