"""Production wiring of ``outagedesk serve incidents``: Kafka, PostgreSQL, wall clock; the
signals and deliveries consumers, the timer (correlator + SLA clock) and relay loops, and
(unless ``--no-api``) the HTTP API of ``services.incidents.api.app:create_app`` under uvicorn
in the same process, sharing the service's feeder cache (operator actions) and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
from typing import Any

import structlog
import uvicorn

from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.kafka import KafkaBus
from services.common.clock import WallClock
from services.common.db import create_engine, session_factory
from services.common.logging import configure_logging
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.settings import IncidentsSettings

log = structlog.get_logger(__name__)


async def serve_incidents(settings: IncidentsSettings, *, loops: bool, api: bool) -> None:
    """Run the incidents service until SIGINT/SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("incidents settings", **settings.masked())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = create_engine(settings.database_url)
    bus = KafkaBus(settings.kafka_bootstrap_servers, settings.kafka_timeout_s)
    sessions = session_factory(engine)
    service = IncidentsService(settings, bus, sessions, WallClock())
    http = _api_server(service, sessions, bus) if api else None
    http_task = asyncio.create_task(http.serve()) if http is not None else None
    try:
        if loops:
            await _start_with_retry(service, stop)
            if not stop.is_set():
                await service.run_forever(stop)
        else:
            await _retry(service.load_topology, stop, "topology load")
            await stop.wait()
    finally:
        await service.stop()
        await bus.close()
        if http is not None and http_task is not None:
            http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await http_task
        await engine.dispose()
        log.info("incidents stopped")


async def _retry(step: Any, stop: asyncio.Event, what: str) -> None:
    backoff = Backoff(max_s=10.0)
    while not stop.is_set():
        try:
            await step()
            return
        except RETRYABLE_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning("incidents step failed; retrying", step=what, error=repr(exc),
                        retry_in_s=delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


async def _start_with_retry(service: IncidentsService, stop: asyncio.Event) -> None:
    backoff = Backoff(max_s=10.0)
    while not stop.is_set():
        try:
            await service.start()
            return
        except RETRYABLE_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning("incidents start failed; retrying", error=repr(exc), retry_in_s=delay)
            await service.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


def _api_server(service: IncidentsService, sessions: Any, bus: KafkaBus) -> uvicorn.Server | None:
    """uvicorn serving ``services.incidents.api.app:create_app`` (when it exists)."""
    try:
        module = importlib.import_module("services.incidents.api.app")
        api_settings = importlib.import_module("services.incidents.api.settings").ApiSettings()
    except ModuleNotFoundError:
        log.warning("services.incidents.api.app not found; serving no API")
        return None
    session_check = getattr(module, "session_check", None)
    if session_check is not None:  # the app adds it only to a readiness of its own
        service.readiness.add("database", session_check(sessions))
    app = module.create_app(
        api_settings, sessions, bus, WallClock(), handlers=service.ctx,
        readiness=service.readiness,
    )  # fmt: skip
    config = uvicorn.Config(
        app, host=api_settings.api_host, port=api_settings.api_port, log_config=None
    )
    return uvicorn.Server(config)
