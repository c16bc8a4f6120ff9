"""Reading lifecycle events back out of ``incidents.outbox`` for the API's SSE feed.

Outbox ids come from a sequence, so a transaction that took id 7 may commit after the one
that took id 8. The feed therefore never skips past a gap at once: it holds back rows after
a missing id for ``gap_grace_s`` (the gap usually fills as the slower transaction commits)
and only then moves on (a rolled-back transaction leaves a permanent gap). Events thus go
out in id order and ``Last-Event-ID`` (the outbox id) resumes without losing any.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.topics import LIFECYCLE
from services.common.outbox import outbox_table

SCHEMA = "incidents"


@dataclass(frozen=True, slots=True)
class FeedEvent:
    id: int
    type: str
    data: bytes


async def latest_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    """The newest outbox id (0 when empty): where a feed without Last-Event-ID starts."""
    t = outbox_table(SCHEMA)
    async with sessions() as session:
        value = (await session.execute(sa.select(sa.func.max(t.c.id)))).scalar()
    return int(value or 0)


class EventFeed:
    """Yields lifecycle events after ``last_id``, optionally only one feeder's or area's."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        last_id: int,
        *,
        feeder: str | None = None,
        area: str | None = None,
        gap_grace_s: float = 2.0,
        batch: int = 500,
    ) -> None:
        self.last_id = last_id
        self._sessions = sessions
        self._feeder = feeder
        self._area = area
        self._grace = gap_grace_s
        self._batch = batch
        self._gap_seen: float | None = None

    async def poll(self) -> list[FeedEvent]:
        """The events visible now, in id order (possibly none)."""
        t = outbox_table(SCHEMA)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    sa.select(t.c.id, t.c.topic, t.c.payload)
                    .where(t.c.id > self.last_id)
                    .order_by(t.c.id)
                    .limit(self._batch)
                )
            ).all()
        out: list[FeedEvent] = []
        for row in rows:
            if row.id != self.last_id + 1 and not self._gap_expired():
                break
            self._gap_seen = None
            self.last_id = row.id
            if row.topic != LIFECYCLE:
                continue
            event = self._matching(row.id, bytes(row.payload))
            if event is not None:
                out.append(event)
        return out

    def _gap_expired(self) -> bool:
        now = time.monotonic()
        if self._gap_seen is None:
            self._gap_seen = now
        return now - self._gap_seen >= self._grace

    def _matching(self, row_id: int, payload: bytes) -> FeedEvent | None:
        try:
            message: dict[str, Any] = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        incident = message.get("incident") or {}
        if self._feeder is not None and incident.get("feeder_id") != self._feeder:
            return None
        if self._area is not None and incident.get("area") != self._area:
            return None
        return FeedEvent(row_id, str(message.get("type", "message")), payload)
