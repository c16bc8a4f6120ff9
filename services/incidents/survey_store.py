"""Survey answers in batches: one read of the customers' restored incidents and one insert
per unit of work, instead of both per answer (the single-answer form is
:func:`services.incidents.report_store.store_survey`, which this matches).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents import orm
from services.incidents.bulk_sql import chunks
from services.incidents.quality_orm import surveys
from services.incidents.state_store import upsert, utc


@dataclass(frozen=True, slots=True)
class SurveyRow:
    """A survey answer (``incident_id`` None: the customer's latest restored incident)."""

    event_id: str
    customer_id: str
    incident_id: str | None
    score: int
    occurred_at: datetime


async def store_surveys(session: AsyncSession, rows: Sequence[SurveyRow]) -> set[str]:
    """Store survey answers once per ``event_id``, each against its incident or else the
    customer's incident restored most recently at or before the answer; the event ids
    newly stored."""
    if not rows:
        return set()
    need = [r for r in rows if r.incident_id is None]
    restored: dict[str, list[tuple[datetime, str]]] = {}
    if need:
        restored = await _restored(
            session, {r.customer_id for r in need}, max(r.occurred_at for r in need)
        )
    values = [
        {
            "event_id": r.event_id, "customer_id": r.customer_id, "score": r.score,
            "incident_id": r.incident_id or _latest(restored.get(r.customer_id, ()),
                                                    r.occurred_at),
            "occurred_at": r.occurred_at,
        }  # fmt: skip
        for r in rows
    ]
    result = await session.execute(
        upsert(session, surveys)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(surveys.c.event_id),
        values,
    )
    return set(result.scalars())


def _latest(candidates: Iterable[tuple[datetime, str]], before: datetime) -> str | None:
    found = max(((at, iid) for at, iid in candidates if at <= before), default=None)
    return None if found is None else found[1]


async def _restored(
    session: AsyncSession, customers: set[str], before: datetime
) -> dict[str, list[tuple[datetime, str]]]:
    """Customer → ``(restored_at, incident_id)`` of their incidents restored by ``before``."""
    i, ic = orm.incidents, orm.incident_customers
    out: dict[str, list[tuple[datetime, str]]] = {}
    for part in chunks(sorted(customers)):
        rows = await session.execute(
            sa.select(ic.c.customer_id, i.c.id, i.c.restored_at)
            .join(ic, ic.c.incident_id == i.c.id)
            .where(ic.c.customer_id.in_(part), i.c.restored_at.is_not(None))
            .where(i.c.restored_at <= before)
        )
        for customer_id, incident_id, restored_at in rows:
            at = utc(restored_at)
            if at is not None:
                out.setdefault(customer_id, []).append((at, str(incident_id)))
    return out
