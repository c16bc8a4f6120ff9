"""Production wiring of ``outagedesk serve incidents``: Kafka, PostgreSQL, wall clock; the
signals and deliveries consumers, the timer (correlator + SLA clock) and relay loops, and
(unless ``--no-api``) the HTTP API of ``services.incidents.api.app:create_app`` under uvicorn
in the same process, sharing the service's feeder cache (operator actions) and readiness."""

from __future__ import annotations

import structlog
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus.kafka import KafkaBus
from services.common.clock import WallClock
from services.common.db import create_engine, session_factory
from services.common.logging import configure_logging
from services.common.serving import HttpServer, not_started, retry_until_stopped, stop_on_signals
from services.incidents.api.app import create_app, session_check
from services.incidents.api.heap import settle_after_startup
from services.incidents.api.settings import ApiSettings
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.settings import IncidentsSettings

log = structlog.get_logger(__name__)


async def serve_incidents(settings: IncidentsSettings, *, loops: bool, api: bool) -> None:
    """Run the incidents service until SIGINT/SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("incidents settings", **settings.masked())
    stop = stop_on_signals()
    engine = create_engine(settings.database_url)
    bus = KafkaBus(settings.kafka_bootstrap_servers, settings.kafka_timeout_s)
    sessions = session_factory(engine)
    service = IncidentsService(settings, bus, sessions, WallClock())
    http = _api_server(service, sessions, bus) if api else None
    try:
        if loops:
            service.readiness.add("consumer", not_started)  # until start() adds its own
            await retry_until_stopped(service.start, stop, "incidents start", undo=service.stop)
            if not stop.is_set():
                _settle(http)
                await service.run_forever(stop)
        else:
            await retry_until_stopped(service.load_topology, stop, "topology load")
            _settle(http)
            await stop.wait()
    finally:
        await service.stop()
        await bus.close()
        if http is not None:
            await http.close()
        await engine.dispose()
        log.info("incidents stopped")


def _settle(http: HttpServer | None) -> None:
    # start-up done (topology and state loaded): keep the collector's full passes, which
    # would walk all of it, from stalling API requests (see services.incidents.api.heap)
    if http is not None:
        settle_after_startup()


def _api_server(
    service: IncidentsService, sessions: async_sessionmaker[AsyncSession], bus: KafkaBus
) -> HttpServer:
    """uvicorn serving the operator API, sharing the service's handlers and readiness."""
    api_settings = ApiSettings()
    service.readiness.add("database", session_check(sessions))
    app = create_app(
        api_settings, sessions, bus, WallClock(), handlers=service.ctx,
        readiness=service.readiness, registry=REGISTRY,  # the service's own metrics too
    )  # fmt: skip
    return HttpServer(app, api_settings.api_host, api_settings.api_port, lifespan=True)
