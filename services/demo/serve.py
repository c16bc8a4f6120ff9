"""After the replay: serve the API and the operator pages on http://127.0.0.1:8000."""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime, timedelta

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.topology.model import Topology
from services.demo.summary import DemoSummary
from services.incidents.api.app import create_app
from services.incidents.api.auth import create_token
from services.incidents.api.settings import ApiSettings
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.settings import IncidentsSettings


async def serve_demo(url: str, sessions: async_sessionmaker[AsyncSession], topology: Topology,
                     summary: DemoSummary) -> None:
    """Serve until interrupted. The clock stands at the end of the replay, so actions taken
    in the browser line up with the scenario's time."""
    secret = secrets.token_urlsafe(32)
    settings = ApiSettings(database_url=url, jwt_secret=secret)
    clock = VirtualClock(summary.end)
    bus = MemoryBus(clock=clock)
    service = IncidentsService(IncidentsSettings(database_url=url), bus, sessions, clock,
                               topology=topology)
    # Tokens expire by the wall clock, whatever time the scenario stands at.
    token = create_token(secret, "demo", ["admin", "manager", "supervisor"],
                         now=datetime.now(UTC), ttl=timedelta(hours=12))
    # the dashboard page embeds the token so it opens without a login (local demo only)
    app = create_app(settings, sessions, bus, clock, handlers=service.ctx,
                     dashboard_token=token)
    host, port = settings.api_host, settings.api_port
    print(f"\nServing the API on http://{host}:{port}/api/v1 (docs: /docs) — Ctrl-C to stop.\n"
          f"Operator dashboard: http://{host}:{port}/dashboard\n"
          f"Demo bearer token (admin, manager, supervisor; 12 h):\n  {token}\n",
          file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    await server.serve()
