"""First notices in batches: the ``first_notices`` queries of the deliveries consumer and
the SLA refresh, one statement per unit of work instead of one or two per delivery or
incident (the single-row forms stay in :mod:`services.incidents.report_store`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.bulk_sql import chunks, insert_rows
from services.incidents.quality_orm import first_notices
from services.incidents.state_store import utc


@dataclass(frozen=True, slots=True)
class Notice:
    """A message sent to a customer about an incident."""

    incident_id: str
    customer_id: str
    sent_at: datetime
    stage: str
    channel: str


async def record_first_notices(session: AsyncSession, notices: Sequence[Notice]) -> set[str]:
    """Keep the earliest message per customer and incident; the incidents whose first
    notice of some customer changed.

    The same outcome as recording the notices one by one in order (an equal time keeps
    the notice recorded first), with one read and at most one upsert.
    """
    earliest: dict[tuple[str, str], Notice] = {}
    for n in notices:
        key = (n.incident_id, n.customer_id)
        known = earliest.get(key)
        if known is None or n.sent_at < known.sent_at:
            earliest[key] = n
    if not earliest:
        return set()
    stored = await _stored(session, sorted(earliest))
    changed = [
        n
        for key, n in sorted(earliest.items())
        if (at := stored.get(key)) is None or n.sent_at < at
    ]
    await insert_rows(
        session, first_notices, ("incident_id", "customer_id", "sent_at", "stage", "channel"),
        [(n.incident_id, n.customer_id, n.sent_at, n.stage, n.channel) for n in changed],
        conflict=("incident_id", "customer_id"), update=("sent_at", "stage", "channel"),
    )  # fmt: skip
    return {n.incident_id for n in changed}


async def first_notice_ats(
    session: AsyncSession, incident_ids: Sequence[str]
) -> dict[str, datetime]:
    """Incident → its first message to any customer (incidents without one are absent)."""
    t = first_notices
    out: dict[str, datetime] = {}
    for part in chunks(sorted(set(incident_ids))):
        rows = await session.execute(
            sa.select(t.c.incident_id, sa.func.min(t.c.sent_at))
            .where(t.c.incident_id.in_(part))
            .group_by(t.c.incident_id)
        )
        for incident_id, sent in rows:
            at = utc(sent)
            if at is not None:
                out[incident_id] = at
    return out


async def _stored(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    # Per incident, customers by primary key: a row-value IN list of (incident, customer)
    # pairs made SQLite scan the table and SQLAlchemy expand two parameters per pair.
    t = first_notices
    customers: dict[str, list[str]] = defaultdict(list)
    for incident_id, customer_id in keys:
        customers[incident_id].append(customer_id)
    out: dict[tuple[str, str], datetime] = {}
    for incident_id, ids in sorted(customers.items()):
        for part in chunks(sorted(ids)):
            rows = await session.execute(
                sa.select(t.c.customer_id, t.c.sent_at).where(
                    t.c.incident_id == incident_id, t.c.customer_id.in_(part)
                )
            )
            for customer_id, sent in rows:
                at = utc(sent)
                if at is not None:
                    out[(incident_id, customer_id)] = at
    return out
