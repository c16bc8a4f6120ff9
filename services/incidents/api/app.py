"""``create_app``: the operator API of DESIGN section 12 wired to its dependencies.

Nothing happens at import time; the caller owns the engine, bus and clock and passes them in
(the incidents service's ``serve``, the demo and the tests each build their own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.common.bus.base import Bus
from services.common.clock import Clock
from services.common.health import Readiness, health_router
from services.common.policy import Policy, load_policy
from services.incidents.api.auth import TokenVerifier
from services.incidents.api.context import ApiContext
from services.incidents.api.fast_reads import FastReads
from services.incidents.api.input_guard import RejectNul
from services.incidents.api.observability import RequestMetrics
from services.incidents.api.pg_reads import ReadPool
from services.incidents.api.problems import install_problem_handlers, move_problems_to_problem_json
from services.incidents.api.routers import (
    audit,
    crews,
    customers,
    dashboard,
    dead_letters,
    events,
    feeders,
    incidents,
    planned,
    reports,
)
from services.incidents.api.settings import ApiSettings
from services.incidents.domain.lifecycle import InvalidTransition
from services.incidents.errors import IncidentsError
from services.incidents.handlers import HandlerContext

TAGS: list[dict[str, Any]] = [
    {"name": "incidents", "description": "Outage, voltage and planned incidents and their actions"},
    {"name": "crews", "description": "Field crews"},
    {"name": "feeders", "description": "Feeders of the network topology"},
    {"name": "planned outages", "description": "Scheduled maintenance outages"},
    {"name": "customers", "description": "Call-centre lookup"},
    {"name": "reports", "description": "Management reports (DESIGN section 11)"},
    {"name": "events", "description": "Server-Sent Events of lifecycle events"},
    {"name": "dead letters", "description": "Rejected input, browsable and replayable"},
    {"name": "audit", "description": "Append-only log of every write"},
    {"name": "health", "description": "Liveness, readiness, Prometheus metrics"},
]


def verifier_from(settings: ApiSettings) -> TokenVerifier:
    """The token verifier the settings describe (raises without any key)."""
    public_key = None
    if settings.jwt_public_key_file is not None:
        public_key = settings.jwt_public_key_file.read_text(encoding="utf-8")
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    return TokenVerifier(
        secret=secret,
        audience=settings.jwt_audience,
        public_key=public_key,
        leeway_s=settings.jwt_leeway_s,
    )


def _engine_url(sessions: async_sessionmaker[AsyncSession]) -> URL | None:
    bind = sessions.kw.get("bind")
    return bind.url if isinstance(bind, AsyncEngine) else None


def session_check(sessions: async_sessionmaker[AsyncSession]) -> Any:
    async def check() -> bool:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
        return True

    return check


def _document_unavailable(schema: dict[str, Any]) -> None:
    """Every /api/v1 operation may answer 503 when the database is busy or unreachable."""
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path, item in schema.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in item.values():
            operation["responses"].setdefault(
                "503",
                {"description": "Database busy or unreachable; retry (Retry-After)",
                 "content": {"application/problem+json": problem}},
            )  # fmt: skip


def _document_health(schema: dict[str, Any]) -> None:
    """The shared health router declares JSON for everything; say what it really answers."""
    paths = schema.get("paths", {})
    metrics = paths.get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    readyz = paths.get("/readyz", {}).get("get")
    if readyz is not None:
        readyz["responses"]["503"] = {
            "description": "Some check is not ok",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }


def create_app(
    settings: ApiSettings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None,
    clock: Clock,
    *,
    handlers: HandlerContext | None = None,
    policy: Policy | None = None,
    readiness: Readiness | None = None,
    registry: CollectorRegistry | None = None,
    verifier: TokenVerifier | None = None,
    sse_poll_s: float = 0.5,
    dashboard_token: str | None = None,
    fast_reads: bool = True,
) -> FastAPI:
    """The API app.

    ``handlers`` (the service's feeder cache and clock) enables incident actions and planned
    outages; without it those answer 503. ``readiness`` / ``registry`` let a serving process
    share its checks and metrics; without them the app checks the database and keeps its
    own registry. ``dashboard_token`` is embedded in the ``/dashboard`` page so it works
    without a login (the demo); without it the page asks for a token. ``fast_reads=False``
    leaves the incident list and detail to their routes alone (see ``api.fast_reads``;
    the tests compare both)."""
    ctx = ApiContext(
        settings=settings,
        sessions=sessions,
        clock=clock,
        policy=policy if policy is not None else load_policy(settings.policy_file),
        bus=bus,
        handlers=handlers,
        sse_poll_s=sse_poll_s,
        reads=ReadPool(_engine_url(sessions)),
    )
    if readiness is None:
        readiness = Readiness()
        readiness.add("database", session_check(sessions))
    registry = registry if registry is not None else CollectorRegistry()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ctx.close()

    app = FastAPI(
        title="OutageDesk API",
        version="1.0.0",
        description="Operator API of OutageDesk (DESIGN section 12). Errors are RFC 9457 "
        "problem details; incident writes need `If-Match` with the incident's `ETag`.",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.verifier = verifier if verifier is not None else verifier_from(settings)
    app.state.dashboard_token = dashboard_token
    install_problem_handlers(app, domain_errors=[IncidentsError, InvalidTransition])
    routers = (incidents, crews, planned, customers, reports, events, dead_letters, audit)
    for module in (*routers, feeders, dashboard):
        app.include_router(module.router)
    app.include_router(health_router(readiness, registry))
    if fast_reads:  # innermost: NUL guard and metrics still see these requests
        app.add_middleware(FastReads, list_route=incidents.list_route,
                           detail_route=incidents.detail_route)  # fmt: skip
    app.add_middleware(RejectNul)
    app.add_middleware(RequestMetrics, registry=registry)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes, tags=app.openapi_tags,
            )  # fmt: skip
            move_problems_to_problem_json(schema)
            _document_health(schema)
            _document_unavailable(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
