"""Notify's topology: customer preferences, critical flags and the phone index of replies,
reloaded when ``topology.changed.v1`` announces a newer version."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.parsing import parse_topology_changed
from schemas.topics import TOPOLOGY_CHANGED
from services.common.backoff import RETRYABLE_ERRORS
from services.common.bus.base import Bus, Consumer
from services.common.db import UnitOfWork
from services.common.topology.model import Topology

log = structlog.get_logger(__name__)

TopologyLoader = Callable[[AsyncSession], Awaitable[Topology]]


async def load_from_database(session: AsyncSession) -> Topology:
    from services.common.topology.repository import load_topology

    topology: Topology = await load_topology(session)
    return topology


class TopologyCache:
    """``current`` is the topology; ``fixed`` (tests, demo) never reloads."""

    def __init__(
        self,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        *,
        fixed: Topology | None = None,
        load: TopologyLoader = load_from_database,
    ) -> None:
        self._bus, self._sessions, self._load = bus, sessions, load
        self._fixed = fixed
        self.current = fixed or Topology.build([], [], [], [])
        self._phones: dict[str, str] | None = None
        self._consumer: Consumer | None = None
        self._stale = fixed is None

    async def start(self) -> None:
        if self._fixed is not None:
            return
        await self._bus.create_topics([TOPOLOGY_CHANGED])
        self._consumer = await self._bus.consumer(
            [TOPOLOGY_CHANGED], group_id=f"notify-topology-{uuid.uuid4().hex[:12]}",
            client_id="notify-topology",
        )  # fmt: skip
        await self.reload()

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def reload(self) -> None:
        async with UnitOfWork(self._sessions) as uow:
            self.current = await self._load(uow.session)
        self._phones, self._stale = None, False
        log.info("topology loaded", version=self.current.version,
                 customers=len(self.current.customers))  # fmt: skip

    async def refresh(self) -> None:
        """Reload if a newer version was announced; a failed reload keeps the cached one."""
        if self._consumer is not None:
            for record in await self._consumer.getmany(timeout_s=0, max_records=1000):
                try:
                    newer = parse_topology_changed(record.value).version > self.current.version
                except ValidationError:
                    newer = True
                self._stale = self._stale or newer
        if self._stale and self._fixed is None:
            try:
                await self.reload()
            except RETRYABLE_ERRORS as exc:
                log.warning("topology reload failed; keeping the cached one", error=repr(exc))

    def customer_by_phone(self, phone: str) -> str | None:
        if self._phones is None:
            self._phones = {
                c.contacts.sms: c.id for c in self.current.customers.values() if c.contacts.sms
            }
        return self._phones.get(phone)
