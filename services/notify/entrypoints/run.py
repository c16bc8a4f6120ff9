"""Production wiring of ``outagedesk serve notify``: Kafka, PostgreSQL, the wall clock, the
configured gateways, and an HTTP server (``/healthz``, ``/readyz``, ``/metrics`` and the
inbound SMS replies) on ``OUTAGEDESK_NOTIFY_PORT`` (default 8001)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
import uvicorn
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.kafka import KafkaBus
from services.common.clock import WallClock
from services.common.db import create_engine, session_factory
from services.common.health import database_check, health_router
from services.common.logging import configure_logging
from services.notify.channels.base import Channel
from services.notify.channels.registry import build_channels
from services.notify.channels.webhook import WebhookChannel
from services.notify.entrypoints.service import NotifyService
from services.notify.service_settings import NotifyServiceSettings

log = structlog.get_logger(__name__)


def http_app(service: NotifyService) -> FastAPI:
    """Health, readiness, metrics and ``POST /inbound/sms``."""
    app = FastAPI(title="outagedesk notify", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(service.readiness, service.registry))
    app.include_router(service.inbound_router())
    return app


async def serve_notify(settings: NotifyServiceSettings) -> None:
    """Run the notify service until SIGINT/SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("notify settings", **settings.masked())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clock = WallClock()
    engine = create_engine(settings.database_url)
    bus = KafkaBus(settings.kafka_bootstrap_servers, settings.kafka_timeout_s)
    channels = build_channels(settings, clock)
    operators: Channel | None = None
    if settings.notify_operators_webhook_url and settings.webhook_secret:
        operators = WebhookChannel(settings.webhook_secret.get_secret_value(), clock)
    service = NotifyService(
        settings, bus, session_factory(engine), clock, None, channels, operators=operators,
        registry=REGISTRY,
    )  # fmt: skip
    service.readiness.add("database", database_check(engine))
    server = None
    if settings.notify_port:
        config = uvicorn.Config(http_app(service), host=settings.notify_host,
                                port=settings.notify_port, log_config=None, lifespan="off")
        server = uvicorn.Server(config)  # fmt: skip
    http_task = asyncio.create_task(server.serve()) if server is not None else None
    try:
        await _start_with_retry(service, stop)
        if not stop.is_set():
            await service.run_forever(stop)
    finally:
        await service.stop()
        for channel in {id(c): c for c in [*channels.values(), operators] if c}.values():
            await channel.aclose()
        await bus.close()
        if server is not None and http_task is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await http_task
        await engine.dispose()
        log.info("notify stopped")


async def _start_with_retry(service: NotifyService, stop: asyncio.Event) -> None:
    # Start-up waits out a broker or database that is not there yet, reporting not ready.
    backoff = Backoff(max_s=10.0)
    while not stop.is_set():
        try:
            await service.start()
            return
        except RETRYABLE_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning("notify start failed; retrying", error=repr(exc), retry_in_s=delay)
            await service.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
