"""The last message notify sent each customer: the call centre's "what were you told".

Messages live in the notify service's schema, which this service does not read (services
share only Kafka, DESIGN section 1); notify publishes every outcome on
``notify.deliveries.v1``, which the incidents service already consumes for first notices
(``services.incidents.quality_hooks.apply_deliveries``). That consumer also keeps, per
customer, the latest delivery with status ``sent`` here, in the same transaction as its
offsets, so the lookup (``GET /api/v1/customers/lookup``) answers from the incidents schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.bulk_sql import insert_rows
from services.incidents.orm import TS, metadata
from services.incidents.state_store import utc

# customer → the latest message sent to them (any stage, survey invitations included)
customer_messages = sa.Table(
    "customer_messages",
    metadata,
    sa.Column("customer_id", sa.Text(), primary_key=True),
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("job_id", sa.Text(), nullable=False),
    sa.Column("stage", sa.Text(), nullable=False),
    sa.Column("channel", sa.Text(), nullable=False),
    sa.Column("sent_at", TS, nullable=False),
)


class SentDelivery(Protocol):
    """The fields of a ``notify.deliveries.v1`` outcome this module reads."""

    @property
    def customer_id(self) -> str: ...
    @property
    def incident_id(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


async def record_last_messages(session: AsyncSession, sent: Iterable[SentDelivery]) -> int:
    """Keep, per customer, the latest of these sent deliveries and the stored one (a
    re-delivered or late outcome never replaces a newer message). Returns the number of
    customers whose outcome was offered."""
    latest: dict[str, SentDelivery] = {}
    for d in sent:
        known = latest.get(d.customer_id)
        if known is None or (d.occurred_at, d.job_id) > (known.occurred_at, known.job_id):
            latest[d.customer_id] = d
    if not latest:
        return 0
    t = customer_messages
    # a stored newer message wins (the WHERE of the update)
    rows = [
        {"customer_id": cid, "incident_id": d.incident_id, "job_id": d.job_id,
         "stage": d.stage, "channel": d.channel, "sent_at": d.occurred_at}
        for cid, d in sorted(latest.items())  # a fixed order: concurrent writers lock alike
    ]  # fmt: skip
    columns = ("incident_id", "job_id", "stage", "channel", "sent_at")
    await insert_rows(session, t, ("customer_id", *columns), rows, conflict=["customer_id"],
                      update=columns, where="t.sent_at <= excluded.sent_at")  # fmt: skip
    return len(latest)


async def last_message(session: AsyncSession, customer_id: str) -> dict[str, Any] | None:
    """The latest message sent to the customer (``incident_id``, ``stage``, ``channel``,
    ``sent_at``, ``job_id``), or None when notify has sent them nothing we know of."""
    t = customer_messages
    row = (
        await session.execute(sa.select(t).where(t.c.customer_id == customer_id))
    ).one_or_none()
    if row is None:
        return None
    sent_at = utc(row.sent_at)
    return {
        "incident_id": row.incident_id,
        "stage": row.stage,
        "channel": row.channel,
        "sent_at": None if sent_at is None else sent_at.isoformat(),
        "job_id": row.job_id,
    }
