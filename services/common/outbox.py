"""Transactional outbox: events are written with the state change, a relay publishes them.

``add_to_outbox`` runs inside the handler's unit of work. :class:`OutboxRelay` publishes
unpublished rows in ``seq`` order per aggregate (one aggregate = one Kafka key, so the
order consumers see per key is the ``seq`` order), then marks them published. A crash
between publishing and marking re-publishes those rows: delivery is at-least-once and
consumers dedupe by ``event_id`` (DESIGN section 4).

Several relays may run at once (one per incidents process). On PostgreSQL a relay owns an
aggregate for one transaction by locking the aggregate's *oldest unpublished* row
(``FOR UPDATE SKIP LOCKED``); it then publishes that aggregate's unpublished rows in
``seq`` order and commits. Another relay finds that head row locked and skips the whole
aggregate; and once the first commits, the head it saw is published, so (re-checked under
the lock) it is no longer a head. Two relays therefore never hold rows of one aggregate at
the same time, and a later ``seq`` is never sent before an earlier one was acknowledged.
Requirement: rows of one aggregate are added in ``seq`` order and their transactions
commit in that order (the aggregate's own row lock gives that). On SQLite ``BEGIN
IMMEDIATE`` serialises relays, so a plain claim in ``id`` order suffices.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from functools import cache
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.base import OutMessage, Producer
from services.common.clock import Clock, WallClock
from services.common.db import UnitOfWork
from services.common.metrics import CommonMetrics
from services.common.orm import metadata_for

log = structlog.get_logger(__name__)

TABLE_NAME = "outbox"
UNPUBLISHED_HEADS = "published_at IS NULL AND seq IS NOT NULL"  # ix_outbox_unpublished_id


def define_outbox(metadata: MetaData) -> Table:
    """The ``outbox`` table on ``metadata`` (idempotent: returns it if defined)."""
    key = f"{metadata.schema}.{TABLE_NAME}" if metadata.schema else TABLE_NAME
    if key in metadata.tables:
        return metadata.tables[key]
    return Table(
        TABLE_NAME,
        metadata,
        # SQLite autoincrements only an INTEGER PRIMARY KEY.
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("aggregate_id", Text, nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=True),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        UniqueConstraint("aggregate_id", "seq"),
        Index(
            f"ix_{TABLE_NAME}_unpublished",
            "aggregate_id",
            "seq",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        # The relay's claim order among unpublished rows, without walking the published
        # ones (PostgreSQL only: SQLite's claim sorts what ix_outbox_unpublished finds).
        # ``seq IS NOT NULL`` (always true) keeps it out of the per-head subquery, which does
        # not repeat that term: see OutboxRelay._claim.
        Index(
            f"ix_{TABLE_NAME}_unpublished_id",
            "id",
            postgresql_where=text(UNPUBLISHED_HEADS),
        ).ddl_if(dialect="postgresql"),
    )


@cache
def outbox_table(schema: str) -> Table:
    return define_outbox(metadata_for(schema))


async def add_to_outbox(
    session: AsyncSession,
    topic: str,
    key: str | None,
    payload: bytes,
    aggregate_id: str,
    seq: int,
    *,
    schema: str,
    created_at: datetime,
) -> None:
    """Queue one message in ``<schema>.outbox``, in the caller's transaction."""
    await session.execute(
        insert(outbox_table(schema)).values(
            aggregate_id=aggregate_id,
            seq=seq,
            topic=topic,
            key=key,
            payload=payload,
            created_at=created_at,
        )
    )


class OutboxRelay:
    """Publishes ``<schema>.outbox`` rows; see the module docstring for the ordering."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        producer: Producer,
        *,
        schema: str,
        batch_size: int = 500,
        clock: Clock | None = None,
        idle_interval_s: float = 0.2,
        metrics: CommonMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._producer = producer
        self._table = outbox_table(schema)
        self._schema = schema
        self._metrics = metrics
        self._batch_size = batch_size
        self._clock = clock or WallClock()
        self._idle_interval_s = idle_interval_s
        self._wake = asyncio.Event()
        self.ready = True

    def wake(self) -> None:
        """Publish soon: call after committing outbox rows in this process."""
        self._wake.set()

    async def run_once(self) -> int:
        """Publish one batch; the number of rows published."""
        async with UnitOfWork(self._sessions) as uow:
            rows = await self._claim(uow.session)
            if not rows:
                return 0
            rows.sort(key=lambda r: (r.aggregate_id, r.seq))
            await self._producer.send(
                [
                    OutMessage(
                        topic=r.topic,
                        value=r.payload,
                        key=None if r.key is None else r.key.encode(),
                    )
                    for r in rows
                ]
            )
            await uow.session.execute(
                update(self._table)
                .where(self._table.c.id.in_([r.id for r in rows]))
                .values(published_at=self._clock.now())
            )
            await uow.commit()
        if self._metrics is not None:
            self._metrics.outbox_published.labels(self._schema).inc(len(rows))
        return len(rows)

    async def _claim(self, session: AsyncSession) -> list[Any]:
        t = self._table
        if session.get_bind().dialect.name != "postgresql":
            # ``id + 0``: the same order, but SQLite then finds the few unpublished rows
            # through the partial index and sorts them, instead of walking the whole table
            # in rowid order (milliseconds per empty claim once it holds thousands of rows).
            result = await session.execute(
                select(t)
                .where(t.c.published_at.is_(None))
                .order_by(t.c.id + 0)
                .limit(self._batch_size)
            )
            return list(result.all())
        head = t.alias("head")
        earlier = t.alias("earlier")
        # A head's seq is its aggregate's least unpublished one: one probe of
        # ix_outbox_unpublished (aggregate, seq) per row read in id order through
        # ix_outbox_unpublished_id. The outbox's statistics are mostly taken while it is all
        # published, so the planner thinks both partial indexes empty and, when it may, reads
        # the least seq through the id index, every unpublished row per head (quadratic in a
        # backlog). That index's extra term ``seq IS NOT NULL``, which the subquery (ORDER BY
        # … LIMIT 1, not min(), which would add it) does not imply, rules it out there.
        first = (
            select(earlier.c.seq)
            .where(earlier.c.aggregate_id == head.c.aggregate_id, earlier.c.published_at.is_(None))
            .order_by(earlier.c.seq)
            .limit(1)
            .scalar_subquery()
        )
        heads = await session.execute(
            select(head.c.aggregate_id)
            .where(head.c.published_at.is_(None), head.c.seq.is_not(None), head.c.seq == first)
            .order_by(head.c.id)
            .limit(self._batch_size)
            .with_for_update(skip_locked=True, of=head)
        )
        owned = [r.aggregate_id for r in heads]
        if not owned:
            return []
        result = await session.execute(
            select(t)
            .where(t.c.aggregate_id.in_(owned), t.c.published_at.is_(None))
            .order_by(t.c.aggregate_id, t.c.seq)
            .limit(self._batch_size)
            .with_for_update()
        )
        return list(result.all())

    async def run_forever(self, stop: asyncio.Event, backoff: Backoff | None = None) -> None:
        """Publish until ``stop`` is set; back off while the database or broker fails."""
        backoff = backoff or Backoff()
        while not stop.is_set():
            try:
                published = await self.run_once()
            except RETRYABLE_ERRORS as exc:
                self.ready = False
                delay = backoff.next_delay()
                log.warning("outbox relay failed; retrying", error=repr(exc), retry_in_s=delay)
                await _wait(stop, delay)
                continue
            self.ready = True
            backoff.reset()
            if published < self._batch_size:
                self._wake.clear()
                await _wait_any(stop, self._wake, self._idle_interval_s)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
