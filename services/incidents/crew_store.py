"""Every query on ``incidents.crews``: field crews and their status and location."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.orm import crews

CREW_STATUSES = ("available", "dispatched", "on_site", "off")


@dataclass(frozen=True, slots=True)
class Crew:
    id: str
    name: str
    status: str
    location: str | None
    current_incident_id: str | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _crew(row: Any) -> Crew:
    values = dict(row._mapping)
    if values["updated_at"].tzinfo is None:
        values["updated_at"] = values["updated_at"].replace(tzinfo=UTC)
    return Crew(**values)


async def list_crews(
    session: AsyncSession, *, after: str | None, limit: int, status: str | None = None
) -> list[Crew]:
    """Crews in id order after ``after``."""
    stmt = sa.select(crews).order_by(crews.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(crews.c.id > after)
    if status is not None:
        stmt = stmt.where(crews.c.status == status)
    return [_crew(r) for r in await session.execute(stmt)]


async def get_crew(session: AsyncSession, crew_id: str, *, lock: bool = False) -> Crew | None:
    stmt = sa.select(crews).where(crews.c.id == crew_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    return None if row is None else _crew(row)


async def add_crew(session: AsyncSession, crew: Crew) -> bool:
    """Insert a crew; False when the id is taken."""
    if await get_crew(session, crew.id) is not None:
        return False
    await session.execute(sa.insert(crews).values(**crew.as_dict()))
    return True


async def update_crew(session: AsyncSession, crew_id: str, **values: Any) -> None:
    """Set columns of one crew; does not commit."""
    await session.execute(sa.update(crews).where(crews.c.id == crew_id).values(**values))
