from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.health import Readiness, health_router
from services.common.metrics import CommonMetrics


class TestHealthEndpoints:
    async def test_readyz_follows_the_checks_and_metrics_render(self) -> None:
        state = {"consumer": False}

        async def consumer_ready() -> bool:
            return state["consumer"]

        async def broken() -> bool:
            raise ConnectionError("db down")

        readiness = Readiness()
        readiness.add("consumer", consumer_ready)
        metrics = CommonMetrics.create()
        metrics.events_in.labels("g", "t").inc(3)
        app = FastAPI()
        app.include_router(health_router(readiness, metrics.registry))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            answer = await client.get("/readyz")
            assert answer.status_code == 503
            assert answer.json()["checks"] == {"consumer": "not ready"}
            state["consumer"] = True
            assert (await client.get("/readyz")).status_code == 200
            readiness.add("db", broken)
            answer = await client.get("/readyz")
            assert answer.status_code == 503
            assert answer.json()["checks"]["db"].startswith("error: ConnectionError")
            body = (await client.get("/metrics")).text
            assert 'outagedesk_events_in_total{group="g",topic="t"} 3.0' in body
