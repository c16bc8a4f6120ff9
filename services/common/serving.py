"""What every ``outagedesk serve …`` process shares: stop on SIGINT/SIGTERM, wait out a
broker or database that is not there yet, and run a small uvicorn server beside the loops."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import structlog
import uvicorn
from fastapi import FastAPI

from services.common.backoff import RETRYABLE_ERRORS, Backoff

log = structlog.get_logger(__name__)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def not_started() -> bool:
    """The readiness check a service's consumer has until its start succeeds: not ready."""
    return False


async def retry_until_stopped(
    step: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    what: str,
    *,
    undo: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Run ``step`` until it succeeds or ``stop`` is set, backing off (up to 10 s) after a
    retryable failure and running ``undo`` (e.g. stop half-started clients) before the next
    try: start-up waits out a broker or database that is not there yet, reporting not ready."""
    backoff = Backoff(max_s=10.0)
    while not stop.is_set():
        try:
            await step()
            return
        except RETRYABLE_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning("start-up step failed; retrying", step=what, error=repr(exc),
                        retry_in_s=delay)  # fmt: skip
            if undo is not None:
                await undo()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


class HttpServer:
    """uvicorn serving ``app`` as a task of this loop; ``close`` stops it gracefully."""

    def __init__(self, app: FastAPI, host: str, port: int, *, lifespan: bool = False) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None,
                                lifespan="auto" if lifespan else "off")  # fmt: skip
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())

    async def close(self) -> None:
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def health_app(title: str) -> FastAPI:
    """A FastAPI app without docs, for a service's health, readiness and metrics routes."""
    return FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
