"""Queries behind the sender: claim due jobs, record outcomes, throttle and opt-out lookups,
escalations.

A claimed job is ``sending`` with ``next_attempt_at`` = the end of its lease; a sender that
dies leaves it so, and the job is claimable again once the lease ends (the admitted
duplicate of DESIGN section 4). Outcome writes are guarded by ``claimed_at`` so a sender
whose lease ran out cannot overwrite the claim of the sender that took the job over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.outbox import outbox_table
from services.notify import orm, sqlite_queue
from services.notify.repository import chunks, from_db, in_list, to_db, upsert

SCHEMA = "notify"


@dataclass(slots=True)
class JobUpdate:
    """The new state of a claimed job (every column the sender may change)."""

    job_id: int
    claimed_at: datetime
    status: str
    next_attempt_at: datetime | None
    attempts: int
    channel: str | None = None
    address: str | None = None
    language: str | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    provider_id: str | None = None


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # SQLite: the sender's statements as plain SQL (see services.notify.sqlite_queue)
        self._sqlite = session.get_bind().dialect.name == "sqlite"

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Any]:
        """Take up to ``limit`` due jobs (and jobs whose lease ran out) for this sender."""
        return (await self.claim_due(now, limit, lease))[0]

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta
    ) -> tuple[list[Any], bool]:
        """:meth:`claim`, and whether no other job was due (fewer than ``limit`` were, or,
        on SQLite, no job past the ``limit`` claimed was: one more row is read to know,
        so the sender need not claim again to find nothing)."""
        if self._sqlite:
            return await sqlite_queue.claim_due(self.session, now, limit, lease)
        t = orm.jobs
        postgres = self.session.get_bind().dialect.name == "postgresql"
        peek = 0 if postgres else 1  # PostgreSQL: an extra row read would be locked too
        query = (
            select(t)
            .where(orm.CLAIMABLE, t.c.next_attempt_at <= to_db(now))
            .order_by(t.c.next_attempt_at, t.c.id)
            .limit(limit + peek)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        # SQLite: BEGIN IMMEDIATE already serialises claimers
        rows = list((await self.session.execute(query)).all())
        all_due = len(rows) < limit + peek
        rows = rows[:limit]
        if rows:
            await self.session.execute(
                update(t)
                .where(in_list(self.session, t.c.id, [r.id for r in rows]))
                .values(status="sending", claimed_at=to_db(now),
                        next_attempt_at=to_db(now + lease))
            )  # fmt: skip
        return rows, all_due

    async def next_due(self) -> datetime | None:
        """The earliest time a job needs a sender (escalations go with their job)."""
        if self._sqlite:
            return await sqlite_queue.next_due(self.session)
        t = orm.jobs
        job = await self.session.scalar(
            select(func.min(t.c.next_attempt_at)).where(orm.CLAIMABLE)
        )
        return from_db(job)

    async def record(self, updates: Sequence[JobUpdate]) -> set[int]:
        """Write the outcomes of claimed jobs (only where the claim is still ours); the ids
        whose claim was still ours."""
        if not updates:
            return set()
        if self._sqlite:
            return await sqlite_queue.record(self.session, updates)
        t = orm.jobs
        claims = {u.job_id: u.claimed_at for u in updates}
        current = await self.session.execute(
            select(t.c.id, t.c.claimed_at).where(t.c.id.in_(list(claims)))
        )
        kept = {r.id for r in current if from_db(r.claimed_at) == claims[r.id]}
        stmt = (
            update(t)
            .where(and_(t.c.id == bindparam("b_id"), t.c.claimed_at == bindparam("b_claimed")))
            .values(
                status=bindparam("b_status"), next_attempt_at=bindparam("b_next"),
                attempts=bindparam("b_attempts"), channel=bindparam("b_channel"),
                address=bindparam("b_address"), language=bindparam("b_language"),
                sent_at=bindparam("b_sent"), last_error=bindparam("b_error"),
                provider_id=bindparam("b_provider"),
            )
        )  # fmt: skip
        rows = [
            {
                "b_id": u.job_id, "b_claimed": to_db(u.claimed_at), "b_status": u.status,
                "b_next": to_db(u.next_attempt_at), "b_attempts": u.attempts,
                "b_channel": u.channel, "b_address": u.address, "b_language": u.language,
                "b_sent": to_db(u.sent_at), "b_error": u.last_error,
                "b_provider": u.provider_id,
            }
            for u in updates
        ]  # fmt: skip
        await self.session.execute(stmt, rows)
        return kept

    async def add_attempts(self, rows: Sequence[dict[str, Any]]) -> None:
        if self._sqlite:
            await sqlite_queue.add_attempts(self.session, rows)
        elif rows:
            await self.session.execute(insert(orm.attempts), list(rows))

    async def set_last_messages(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert each customer's latest sent message (throttle, call-centre lookup)."""
        if self._sqlite:
            await sqlite_queue.set_last_messages(self.session, rows)
            return
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest[row["customer_id"]] = {**row, "at": to_db(row["at"])}
        if not latest:
            return
        stmt = upsert(self.session, orm.last_message)
        cols = {c: stmt.excluded[c] for c in ("at", "stage", "incident_id", "channel", "body")}
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["customer_id"], set_=cols),
            list(latest.values()),
        )

    async def add_outbox(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue delivery outcomes for ``notify.deliveries.v1`` (rows of the outbox table)."""
        if self._sqlite:
            await sqlite_queue.add_outbox(self.session, rows)
        elif rows:
            await self.session.execute(insert(outbox_table(SCHEMA)), list(rows))

    async def last_sent(self, customers: Sequence[str]) -> dict[str, Any]:
        """customer → its ``last_message`` row."""
        t = orm.last_message
        found: dict[str, Any] = {}
        for part in chunks(list(customers)):
            query = select(t).where(in_list(self.session, t.c.customer_id, part))
            for r in await self.session.execute(query):
                found[r.customer_id] = r
        return found

    async def opted_out(self, customers: Sequence[str]) -> set[str]:
        if self._sqlite:
            return await sqlite_queue.opted_out(self.session, customers)
        t = orm.opt_outs
        found: set[str] = set()
        for part in chunks(list(customers)):
            rows = await self.session.execute(select(t.c.customer_id).where(
                in_list(self.session, t.c.customer_id, part)))  # fmt: skip
            found.update(r.customer_id for r in rows)
        return found

    async def set_opt_out(self, customer_id: str, at: datetime, source: str | None) -> None:
        """Record that the customer wants no more messages (idempotent)."""
        stmt = upsert(self.session, orm.opt_outs).values(
            customer_id=customer_id, at=to_db(at), source=source
        )
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["customer_id"]))

    async def clear_opt_out(self, customer_id: str) -> None:
        t = orm.opt_outs
        await self.session.execute(t.delete().where(t.c.customer_id == customer_id))

    async def pending_escalations(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (incident, customer) pairs among ``pairs`` whose escalation is not done."""
        if self._sqlite:
            return await sqlite_queue.pending_escalations(self.session, pairs)
        t = orm.escalations
        found: set[tuple[str, str]] = set()
        for part in chunks(list(pairs), 500):
            rows = await self.session.execute(
                select(t.c.incident_id, t.c.customer_id).where(
                    tuple_(t.c.incident_id, t.c.customer_id).in_(list(part)),
                    t.c.status == "pending",
                )
            )
            found.update((r.incident_id, r.customer_id) for r in rows)
        return found

    async def finish_escalations(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows of ``incident_id, customer_id, status, at, error``."""
        t = orm.escalations
        for r in rows:
            sent = r["status"] == "sent"
            await self.session.execute(
                update(t)
                .where(t.c.incident_id == r["incident_id"], t.c.customer_id == r["customer_id"])
                .values(status=r["status"], sent=sent, sent_at=to_db(r["at"]) if sent else None,
                        last_error=r.get("error"))
            )  # fmt: skip
