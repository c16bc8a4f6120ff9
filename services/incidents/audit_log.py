"""The append-only audit log (``incidents.audit``): who changed what, before and after.

The incident handlers audit incident actions; the API audits its other writes (crews,
planned outages, dead-letter replays) here, in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.orm import audit


def jsonable(value: Any) -> Any:
    """``value`` with timestamps as RFC 3339 text, so it fits a JSON column."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


async def record_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    at: datetime,
    incident_id: str | None = None,
) -> None:
    """Append one audit row in the caller's transaction."""
    await session.execute(
        sa.insert(audit).values(
            at=at,
            actor=actor,
            action=action,
            incident_id=incident_id,
            before=None if before is None else jsonable(before),
            after=None if after is None else jsonable(after),
        )  # fmt: skip
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    incident_id: str | None
    before: Any
    after: Any


async def list_audit(
    session: AsyncSession,
    *,
    after_id: int,
    limit: int,
    actor: str | None = None,
    action: str | None = None,
    incident_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEntry]:
    """Audit rows with id > ``after_id`` in id (= append) order, filtered."""
    stmt = sa.select(audit).where(audit.c.id > after_id).order_by(audit.c.id).limit(limit)
    if actor is not None:
        stmt = stmt.where(audit.c.actor == actor)
    if action is not None:
        stmt = stmt.where(audit.c.action == action)
    if incident_id is not None:
        stmt = stmt.where(audit.c.incident_id == incident_id)
    if since is not None:
        stmt = stmt.where(audit.c.at >= since)
    if until is not None:
        stmt = stmt.where(audit.c.at < until)
    out = []
    for row in await session.execute(stmt):
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        out.append(AuditEntry(row.id, at, row.actor, row.action, row.incident_id,
                              row.before, row.after))  # fmt: skip
    return out
