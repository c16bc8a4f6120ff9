"""Production wiring of ``outagedesk serve ingest``: Kafka, PostgreSQL, wall clock, and a
small HTTP server for ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
import uvicorn
from fastapi import FastAPI

from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.kafka import KafkaBus
from services.common.clock import WallClock
from services.common.db import create_engine, session_factory
from services.common.health import database_check, health_router
from services.common.logging import configure_logging
from services.ingest.entrypoints.service import IngestService
from services.ingest.settings import IngestSettings

log = structlog.get_logger(__name__)


async def serve_ingest(settings: IngestSettings) -> None:
    """Run the ingest service until SIGINT/SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("ingest settings", **settings.masked())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = create_engine(settings.database_url)
    bus = KafkaBus(settings.kafka_bootstrap_servers, settings.kafka_timeout_s)
    service = IngestService(settings, bus, session_factory(engine), WallClock())
    service.readiness.add("database", database_check(engine))
    http = _http_server(settings, service) if settings.ingest_metrics_port else None
    http_task = asyncio.create_task(http.serve()) if http is not None else None
    try:
        await _start_with_retry(service, stop)
        if not stop.is_set():
            await service.run_forever(stop)
    finally:
        await service.stop()
        await bus.close()
        if http is not None and http_task is not None:
            http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await http_task
        await engine.dispose()
        log.info("ingest stopped")


async def _start_with_retry(service: IngestService, stop: asyncio.Event) -> None:
    # Start-up waits out a broker or database that is not there yet, reporting not ready.
    backoff = Backoff(max_s=10.0)
    while not stop.is_set():
        try:
            await service.start()
            return
        except RETRYABLE_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning("ingest start failed; retrying", error=repr(exc), retry_in_s=delay)
            await service.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


def _http_server(settings: IngestSettings, service: IngestService) -> uvicorn.Server:
    app = FastAPI(title="outagedesk ingest", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(service.readiness, service.registry))
    config = uvicorn.Config(
        app,
        host=settings.ingest_metrics_host,
        port=settings.ingest_metrics_port,
        log_config=None,
        lifespan="off",
    )
    return uvicorn.Server(config)
