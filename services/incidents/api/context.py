"""What the routes share: sessions, clock, bus, policy and settings, set up by ``create_app``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus.base import Bus, Producer
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.policy import Policy
from services.incidents.api.pg_reads import ReadPool
from services.incidents.api.problems import ApiProblem
from services.incidents.api.settings import ApiSettings
from services.incidents.handlers import HandlerContext


@dataclass(slots=True)
class ApiContext:
    settings: ApiSettings
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    policy: Policy
    bus: Bus | None = None
    # the incidents service's handler context (feeder cache); None: read-only API
    handlers: HandlerContext | None = None
    sse_poll_s: float = 0.5
    sse_heartbeat_s: float = 15.0
    # the hot reads' own asyncpg pool on PostgreSQL (see pg_reads); set up by create_app
    reads: ReadPool = field(default_factory=lambda: ReadPool(None))
    _producer: Producer | None = None
    _producer_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def producer(self) -> Producer:
        """The API's producer (dead-letter replay), started on first use; 503 without a bus."""
        if self.bus is None:
            raise ApiProblem(503, "bus_unavailable", "this API runs without a message bus")
        async with self._producer_lock:
            if self._producer is None:
                self._producer = await self.bus.producer(client_id="outagedesk-api")
            return self._producer

    async def close(self) -> None:
        await self.reads.close()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


def _state(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


async def _context(request: Request) -> ApiContext:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    # hand-off per request that cost more than the whole detail query
    return _state(request)


Context = Annotated[ApiContext, Depends(_context)]


async def _unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    async with UnitOfWork(_state(request).sessions) as uow:
        yield uow


Uow = Annotated[UnitOfWork, Depends(_unit_of_work)]
