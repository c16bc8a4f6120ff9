"""Liveness, readiness and metrics endpoints (``/healthz``, ``/readyz``, ``/metrics``).

Components register named readiness checks (async callables answering True when ready);
``/readyz`` answers 503 while any check is false, raises or times out — a service that
waits out a database or broker outage reports not-ready instead of crashing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.metrics import render

ReadinessCheck = Callable[[], Awaitable[bool]]


class Readiness:
    def __init__(self, timeout_s: float = 2.0) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        self._timeout_s = timeout_s

    def add(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)

    async def evaluate(self) -> dict[str, str]:
        """Each check's state: ``ok``, ``not ready``, ``timeout`` or the error raised."""
        names = list(self._checks)
        results = await asyncio.gather(
            *(self._run(self._checks[n]) for n in names), return_exceptions=False
        )
        return dict(zip(names, results, strict=True))

    async def _run(self, check: ReadinessCheck) -> str:
        try:
            async with asyncio.timeout(self._timeout_s):
                return "ok" if await check() else "not ready"
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # noqa: BLE001 - a failing check means "not ready"
            return f"error: {type(exc).__name__}: {exc}"

    async def ready(self) -> bool:
        return all(v == "ok" for v in (await self.evaluate()).values())


def database_check(engine: AsyncEngine) -> ReadinessCheck:
    """A readiness check that runs ``SELECT 1``."""

    async def check() -> bool:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    return check


def health_router(readiness: Readiness, registry: CollectorRegistry | None = None) -> APIRouter:
    """``/healthz`` (process alive), ``/readyz`` (every check ok) and ``/metrics``."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await readiness.evaluate()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    if registry is not None:

        @router.get("/metrics")
        async def metrics() -> Response:
            body, content_type = render(registry)
            return Response(content=body, media_type=content_type)

    return router
