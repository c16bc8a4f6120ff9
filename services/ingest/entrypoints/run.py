"""Production wiring of ``outagedesk serve ingest``: Kafka, PostgreSQL, wall clock, and a
small HTTP server for ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import structlog

from services.common.bus.kafka import KafkaBus
from services.common.clock import WallClock
from services.common.db import create_engine, session_factory
from services.common.health import database_check, health_router
from services.common.logging import configure_logging
from services.common.serving import (
    HttpServer,
    health_app,
    not_started,
    retry_until_stopped,
    stop_on_signals,
)
from services.ingest.entrypoints.service import IngestService
from services.ingest.settings import IngestSettings

log = structlog.get_logger(__name__)


async def serve_ingest(settings: IngestSettings) -> None:
    """Run the ingest service until SIGINT/SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("ingest settings", **settings.masked())
    stop = stop_on_signals()
    engine = create_engine(settings.database_url)
    bus = KafkaBus(
        settings.kafka_bootstrap_servers,
        settings.kafka_timeout_s,
        fetch_max_wait_ms=settings.ingest_fetch_max_wait_ms,
    )
    service = IngestService(settings, bus, session_factory(engine), WallClock())
    service.readiness.add("database", database_check(engine))
    http = None
    if settings.ingest_metrics_port:
        app = health_app("outagedesk ingest")
        app.include_router(health_router(service.readiness, service.registry))
        http = HttpServer(app, settings.ingest_metrics_host, settings.ingest_metrics_port)
    service.readiness.add("consumer", not_started)  # until start() adds its own
    try:
        await retry_until_stopped(service.start, stop, "ingest start", undo=service.stop)
        if not stop.is_set():
            await service.run_forever(stop)
    finally:
        await service.stop()
        await bus.close()
        if http is not None:
            await http.close()
        await engine.dispose()
        log.info("ingest stopped")
