"""Customer reports (every ``call_*`` signal), surveys and first notices: the rows the impact
formula's ``calls`` and ``not notified within target`` terms and the SLA ``first_notice``
target are computed from. Every query on those tables lives here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents import orm
from services.incidents.quality_orm import customer_reports, first_notices, surveys
from services.incidents.state_store import upsert, utc

OPEN_VOLTAGE = ("detected", "confirmed")


@dataclass(frozen=True, slots=True)
class CustomerReportRow:
    """One ``call_*`` signal as stored."""

    event_id: str
    customer_id: str
    meter_id: str | None
    transformer_id: str | None
    feeder_id: str
    kind: str
    channel: str | None
    incident_id: str | None
    occurred_at: datetime


async def store_customer_report(session: AsyncSession, row: CustomerReportRow) -> bool:
    """Insert a report once per ``event_id``; False for a duplicate."""
    values = {name: getattr(row, name) for name in row.__slots__}
    inserted = await session.execute(
        upsert(session, customer_reports)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(customer_reports.c.event_id)
    )
    return inserted.first() is not None


async def outage_incident_at(session: AsyncSession, customer_id: str, at: datetime) -> str | None:
    """The incident owning the customer's interruption that covers ``at`` (open ones first)."""
    t = orm.interruptions
    row = (
        await session.execute(
            sa.select(t.c.incident_id)
            .where(
                t.c.customer_id == customer_id,
                t.c.start <= at,
                sa.or_(t.c.end.is_(None), t.c.end >= at),
            )
            .order_by(t.c.end.is_(None).desc(), t.c.start.desc())
            .limit(1)
        )
    ).first()
    if row is not None:
        return str(row.incident_id)
    held = await session.scalar(
        sa.select(orm.holders.c.incident_id).where(orm.holders.c.customer_id == customer_id)
    )
    return None if held is None else str(held)


async def open_voltage_incident(session: AsyncSession, transformer_id: str) -> str | None:
    """The id of the transformer's open voltage incident, if any."""
    t = orm.incidents
    found = await session.scalar(
        sa.select(t.c.id)
        .where(t.c.kind == "voltage", t.c.transformer_id == transformer_id)
        .where(t.c.status.in_(OPEN_VOLTAGE))
        .order_by(t.c.detected_at.desc())
        .limit(1)
    )
    return None if found is None else str(found)


async def calls_per_customer(
    session: AsyncSession,
    incident_id: str,
    windows: Mapping[str, tuple[datetime, datetime | None]],
) -> Counter[str]:
    """Reports each customer made about the incident: tagged with it, or untagged and made
    during that customer's window ``(start, end or None)`` (a call can precede the
    incident's creation, e.g. the call that started a single-customer outage)."""
    t = customer_reports
    counts: Counter[str] = Counter()
    tagged = await session.execute(
        sa.select(t.c.customer_id, sa.func.count())
        .where(t.c.incident_id == incident_id)
        .group_by(t.c.customer_id)
    )
    for customer_id, n in tagged:
        counts[customer_id] += int(n)
    if windows:
        earliest = min(start for start, _ in windows.values())
        untagged = await session.execute(
            sa.select(t.c.customer_id, t.c.occurred_at).where(
                t.c.incident_id.is_(None), t.c.occurred_at >= earliest
            )
        )
        for customer_id, occurred in untagged:
            window = windows.get(customer_id)
            at = utc(occurred)
            if window is None or at is None:
                continue
            start, end = window
            if start <= at and (end is None or at <= end):
                counts[customer_id] += 1
    return counts


async def store_survey(
    session: AsyncSession,
    event_id: str,
    customer_id: str,
    incident_id: str | None,
    score: int,
    occurred_at: datetime,
) -> bool:
    """Store a survey answer against the given incident, or the customer's most recently
    restored one before the answer; False for a duplicate."""
    if incident_id is None:
        incident_id = await latest_restored_incident(session, customer_id, occurred_at)
    inserted = await session.execute(
        upsert(session, surveys)
        .values(
            event_id=event_id,
            customer_id=customer_id,
            incident_id=incident_id,
            score=score,
            occurred_at=occurred_at,
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(surveys.c.event_id)
    )
    return inserted.first() is not None


async def latest_restored_incident(
    session: AsyncSession, customer_id: str, before: datetime
) -> str | None:
    """The customer's incident restored most recently at or before ``before``."""
    i, ic = orm.incidents, orm.incident_customers
    found = await session.scalar(
        sa.select(i.c.id)
        .join(ic, ic.c.incident_id == i.c.id)
        .where(ic.c.customer_id == customer_id, i.c.restored_at.is_not(None))
        .where(i.c.restored_at <= before)
        .order_by(i.c.restored_at.desc())
        .limit(1)
    )
    return None if found is None else str(found)


async def record_first_notice(
    session: AsyncSession,
    incident_id: str,
    customer_id: str,
    sent_at: datetime,
    stage: str,
    channel: str,
) -> bool:
    """Keep the earliest message sent to a customer about an incident; True when it changed."""
    t = first_notices
    current = await session.scalar(
        sa.select(t.c.sent_at).where(t.c.incident_id == incident_id, t.c.customer_id == customer_id)
    )
    known = utc(current)
    if known is not None and known <= sent_at:
        return False
    stmt = upsert(session, t).values(
        incident_id=incident_id, customer_id=customer_id, sent_at=sent_at, stage=stage,
        channel=channel,
    )  # fmt: skip
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["incident_id", "customer_id"],
            set_={k: stmt.excluded[k] for k in ("sent_at", "stage", "channel")},
        )
    )
    return True


async def first_notice_times(session: AsyncSession, incident_id: str) -> dict[str, datetime]:
    """Customer → first message sent about the incident."""
    t = first_notices
    rows = await session.execute(
        sa.select(t.c.customer_id, t.c.sent_at).where(t.c.incident_id == incident_id)
    )
    out: dict[str, datetime] = {}
    for customer_id, sent in rows:
        at = utc(sent)
        if at is not None:
            out[customer_id] = at
    return out


async def first_notice_at(session: AsyncSession, incident_id: str) -> datetime | None:
    """The incident's first message to any customer (the SLA ``first_notice`` completion)."""
    t = first_notices
    return utc(
        await session.scalar(
            sa.select(sa.func.min(t.c.sent_at)).where(t.c.incident_id == incident_id)
        )
    )
