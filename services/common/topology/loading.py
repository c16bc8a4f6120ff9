"""Load a topology file into the database: parse and validate, store in one transaction,
then announce the new version.

Publishing ``topology.changed.v1`` is the caller's hook (``on_loaded``), run only after the
commit, so no service refreshes to a version that was rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from schemas.misc import TopologyChanged
from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate_engine
from services.common.topology.loader import load_topology_file
from services.common.topology.model import Topology
from services.common.topology.repository import store_topology

OnLoaded = Callable[[TopologyChanged], Awaitable[None]]


async def load_file_into_database(
    database_url: str,
    path: str | Path,
    *,
    on_loaded: OnLoaded | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Topology:
    """Validate ``path`` (raises TopologyError before touching the database), migrate the
    ``topology`` schema, store the topology and call ``on_loaded`` after the commit."""
    topo = load_topology_file(path)
    engine = create_engine(database_url)
    try:
        await migrate_engine(engine, schemas=("topology",))
        changed_at = now()
        async with UnitOfWork(session_factory(engine)) as uow:
            version = await store_topology(uow.session, topo, loaded_at=changed_at)
            await uow.commit()
    finally:
        await engine.dispose()
    if on_loaded is not None:
        await on_loaded(TopologyChanged(version=version, changed_at=changed_at))
    return topo
