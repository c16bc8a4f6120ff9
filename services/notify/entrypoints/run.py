"""Production wiring of ``outagedesk serve notify``: Kafka, PostgreSQL, the wall clock, the
configured gateways, and an HTTP server (``/healthz``, ``/readyz``, ``/metrics`` and the
inbound SMS replies) on ``OUTAGEDESK_NOTIFY_PORT`` (default 8001)."""

from __future__ import annotations

import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY

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
from services.notify.channels.base import Channel
from services.notify.channels.registry import build_channels
from services.notify.channels.webhook import WebhookChannel
from services.notify.entrypoints.service import NotifyService
from services.notify.service_settings import NotifyServiceSettings

log = structlog.get_logger(__name__)


def http_app(service: NotifyService) -> FastAPI:
    """Health, readiness, metrics and ``POST /inbound/sms``."""
    app = health_app("outagedesk notify")
    app.include_router(health_router(service.readiness, service.registry))
    app.include_router(service.inbound_router())
    return app


async def serve_notify(settings: NotifyServiceSettings) -> None:
    """Run the notify service until SIGINT/SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("notify settings", **settings.masked())
    stop = stop_on_signals()
    clock = WallClock()
    engine = create_engine(settings.database_url)
    bus = KafkaBus(settings.kafka_bootstrap_servers, settings.kafka_timeout_s)
    channels = build_channels(settings, clock)
    operators: Channel | None = None
    if settings.notify_operators_webhook_url and settings.webhook_secret:
        operators = WebhookChannel(settings.webhook_secret.get_secret_value(), clock)
    service = NotifyService(
        settings, bus, session_factory(engine), clock, None, channels, operators=operators,
        registry=REGISTRY, sole_writer=settings.notify_single_replica,
    )  # fmt: skip
    service.readiness.add("database", database_check(engine))
    http = None
    if settings.notify_port:
        http = HttpServer(http_app(service), settings.notify_host, settings.notify_port)
    service.readiness.add("consumer", not_started)  # until start() adds its own
    try:
        await retry_until_stopped(service.start, stop, "notify start", undo=service.stop)
        if not stop.is_set():
            await service.run_forever(stop)
    finally:
        await service.stop()
        for channel in {id(c): c for c in [*channels.values(), operators] if c}.values():
            await channel.aclose()
        await bus.close()
        if http is not None:
            await http.close()
        await engine.dispose()
        log.info("notify stopped")
