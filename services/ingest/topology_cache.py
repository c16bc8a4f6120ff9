"""The topology ingest enriches with, refreshed on ``topology.changed.v1`` without restart.

Each process reads the change topic in a group of its own (new groups start at the
earliest offset), so every ingest instance sees every bump. The consumer is created
before the first load, so a change committed between the two is not missed.
"""

from __future__ import annotations

import gc
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
from services.ingest.domain.enrichment import Locations

log = structlog.get_logger(__name__)

TopologyLoader = Callable[[AsyncSession], Awaitable[Topology]]


def empty_topology() -> Topology:
    return Topology.build([], [], [], [])


class TopologyCache:
    def __init__(
        self,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        load: TopologyLoader,
        *,
        group_prefix: str = "ingest-topology",
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self._load = load
        self._group_id = f"{group_prefix}-{uuid.uuid4().hex[:12]}"
        self._consumer: Consumer | None = None
        self._stale = True
        self.current: Topology = empty_topology()
        self.locations = Locations(self.current)
        self.reloads = 0

    async def start(self) -> None:
        await self._bus.create_topics([TOPOLOGY_CHANGED])
        self._consumer = await self._bus.consumer(
            [TOPOLOGY_CHANGED], group_id=self._group_id, client_id="ingest-topology"
        )
        await self.reload()

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def reload(self) -> Topology:
        """Load the topology from the database now; raises when the database is down."""
        async with UnitOfWork(self._sessions) as uow:
            topology = await self._load(uow.session)
        self.current = topology
        self.locations = Locations(topology).prime()
        # The topology and its memo live until the next reload, and a full collection walked
        # them all (a million objects for 100,000 meters) every few batches: a sixth of the
        # service's CPU. Frozen objects are skipped by the cyclic GC (they hold no cycles;
        # reference counting still frees the old version after the next reload). Young
        # garbage is collected first so none of it is frozen with them.
        gc.collect(1)
        gc.freeze()
        self._stale = False
        self.reloads += 1
        log.info(
            "topology loaded",
            version=topology.version,
            feeders=len(topology.feeders),
            customers=len(topology.customers),
        )
        return topology

    async def refresh(self) -> bool:
        """Reload when a newer version was announced (or a reload is owed); True if reloaded.
        A failed reload keeps the cached topology and is retried on the next call."""
        if self._consumer is not None:
            for record in await self._consumer.getmany(timeout_s=0, max_records=1000):
                if self._announces_newer(record.value):
                    self._stale = True
        if not self._stale:
            return False
        try:
            await self.reload()
        except RETRYABLE_ERRORS as exc:
            log.warning("topology reload failed; keeping the cached one", error=repr(exc))
            return False
        return True

    def _announces_newer(self, value: bytes) -> bool:
        try:
            version = parse_topology_changed(value).version
        except ValidationError:
            return True  # an unreadable bump still means "something changed"
        return version > self.current.version
