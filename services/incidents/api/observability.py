"""Request metrics of the API: latency by method, route template and status."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RequestMetrics:
    """A pure ASGI middleware (no body buffering, so SSE streams pass straight through)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self._app = app
        self._latency = Histogram(
            "outagedesk_api_request_seconds",
            "API request latency until the response headers are sent",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route: Any = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self._latency.labels(scope["method"], template, str(message["status"])).observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self._app(scope, receive, timed_send)
