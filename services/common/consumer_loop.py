"""The consume → apply → commit loop shared by every consuming service (DESIGN section 4).

Two offset strategies:

* ``OffsetStorage.DATABASE`` (incidents, notify): each batch is applied in ONE unit of work
  that also advances ``<schema>.consumer_offsets``; the database commit is the commit. On
  assignment the consumer seeks to the stored offsets. Kafka offsets are committed too,
  best effort, only so that lag metrics and tools see progress.
* ``OffsetStorage.BROKER`` (ingest, at-least-once): the batch is applied (``apply`` returns
  once everything it produced is acknowledged), its unit of work commits, and only then are
  the offsets committed to the broker.

A batch that fails is rewound (its partitions re-seek to where the batch started, or to the
stored offsets), so nothing read is skipped; ``run_forever`` then backs off and retries
while reporting not ready.

Given a ``clock``, the loop also keeps a processing watermark, ``caught_up_at``: the latest
instant at which it knew every record then in its assigned partitions was applied. Timers
that judge "what has arrived by T" wait for it to pass T (incidents, DESIGN section 5);
without a clock (ingest, notify) nothing extra is asked of the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.backoff import RETRYABLE_ERRORS, Backoff
from services.common.bus.base import Bus, Consumer, Record, TopicPartition
from services.common.bus.watchdog import ProgressWatchdog
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.metrics import CommonMetrics
from services.common.offsets import OffsetStore

log = structlog.get_logger(__name__)

ApplyBatch = Callable[[UnitOfWork, Sequence[Record]], Awaitable[None]]
PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]


class OffsetStorage(StrEnum):
    DATABASE = "database"
    BROKER = "broker"


class StaleOffsetsError(Exception):
    """Another consumer advanced a partition's stored offset first (rebalance overlap)."""


class BatchConsumer:
    def __init__(
        self,
        bus: Bus,
        topics: Sequence[str],
        *,
        group_id: str,
        sessions: async_sessionmaker[AsyncSession],
        apply: ApplyBatch,
        storage: OffsetStorage = OffsetStorage.DATABASE,
        schema: str | None = None,
        batch_size: int = 500,
        poll_timeout_s: float = 1.0,
        on_assigned: PartitionsHook | None = None,
        on_revoked: PartitionsHook | None = None,
        metrics: CommonMetrics | None = None,
        watchdog: ProgressWatchdog | None = None,
        client_id: str = "outagedesk",
        clock: Clock | None = None,
        on_rollback: Callable[[], None] | None = None,
    ) -> None:
        """``on_rollback``: called when a batch was handed to ``apply`` but its transaction
        did not commit (an error, or a rebalance moved the stored offsets): state the caller
        keeps in memory beside the database may hold that batch's effects and is stale."""
        if storage is OffsetStorage.DATABASE and schema is None:
            raise ValueError("OffsetStorage.DATABASE needs the schema holding consumer_offsets")
        self._bus = bus
        self._topics = list(topics)
        self.group_id = group_id
        self._sessions = sessions
        self._apply = apply
        self.storage = storage
        self._offsets = OffsetStore(schema) if schema is not None else None
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._user_assigned = on_assigned
        self._user_revoked = on_revoked
        self._metrics = metrics
        self._watchdog = watchdog
        self._client_id = client_id
        self._consumer: Consumer | None = None
        self._stored: dict[TopicPartition, int | None] = {}  # DB value, None = no row yet
        self._pending_seek: set[TopicPartition] = set()
        self._uncommitted: dict[TopicPartition, int] = {}  # broker commit still owed
        self._lock = asyncio.Lock()  # a revocation waits for the batch in flight
        self._clock = clock
        self._on_rollback = on_rollback
        # Processing watermark (only kept with a clock): everything in the assigned
        # partitions at this instant has been applied and committed. Never moves back.
        self.caught_up_at: datetime | None = None
        self.ready = False

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("BatchConsumer.start() was not called")
        return self._consumer

    async def start(self) -> None:
        self._consumer = await self._bus.consumer(
            self._topics,
            group_id=self.group_id,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            client_id=self._client_id,
        )

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def restart(self) -> None:
        """Replace the bus consumer (watchdog remedy for a stalled client)."""
        if self._uncommitted and self._consumer is not None:
            await self._commit_broker_best_effort()
        await self.stop()
        self._stored.clear()
        self._pending_seek.clear()
        self._uncommitted.clear()
        await self.start()

    async def check(self) -> bool:
        """Readiness check: the last attempt succeeded."""
        return self.ready

    # -- rebalance ---------------------------------------------------------------------
    async def _on_assigned(self, tps: set[TopicPartition]) -> Mapping[TopicPartition, int]:
        seeks: dict[TopicPartition, int] = {}
        if self._offsets is not None:
            try:
                seeks = await self._load_offsets(tps)
            except RETRYABLE_ERRORS as exc:
                # Resolved by run_once before anything from these partitions is applied.
                log.warning("loading stored offsets failed", group=self.group_id, error=repr(exc))
                self._pending_seek |= tps
        if self._user_assigned is not None:
            await self._user_assigned(tps)
        return seeks

    async def _on_revoked(self, tps: set[TopicPartition]) -> None:
        async with self._lock:
            for tp in tps:
                self._stored.pop(tp, None)
                self._pending_seek.discard(tp)
            if self._uncommitted:
                await self._commit_broker_best_effort()
        if self._user_revoked is not None:
            await self._user_revoked(tps)

    async def _load_offsets(self, tps: set[TopicPartition]) -> dict[TopicPartition, int]:
        assert self._offsets is not None
        async with UnitOfWork(self._sessions) as uow:
            loaded = await self._offsets.load(uow.session, self.group_id, tps)
        for tp in tps:
            self._stored[tp] = loaded.get(tp)
            self._pending_seek.discard(tp)
        return loaded

    async def _resolve_pending_seeks(self) -> None:
        pending = self._pending_seek & self.consumer.assignment()
        self._pending_seek &= pending
        if not pending:
            return
        loaded = await self._load_offsets(pending)
        for tp, offset in loaded.items():
            await self.consumer.seek(tp, offset)

    async def _rewind(self, records: Sequence[Record]) -> None:
        """Make the records of a failed batch readable again."""
        first: dict[TopicPartition, int] = {}
        for r in records:
            first.setdefault(r.tp, r.offset)
        assigned = self.consumer.assignment()
        for tp, offset in first.items():
            if tp not in assigned:
                continue
            await self.consumer.seek(tp, offset)
            if self._offsets is not None:
                self._pending_seek.add(tp)  # the stored offset has the last word

    # -- the loop ----------------------------------------------------------------------
    async def run_once(self, max_records: int | None = None) -> int:
        """Consume, apply and commit one batch; the number of records applied."""
        if self._consumer is None:
            # A restart whose start failed (broker down): start again, or raise BusError
            # so the caller backs off and retries, instead of dying on a missing client.
            await self.start()
        if self._uncommitted:
            await self._commit_broker()
        await self._resolve_pending_seeks()
        limit = max_records or self._batch_size
        records = await self.consumer.getmany(timeout_s=self._poll_timeout_s, max_records=limit)
        if not records:
            await self._note_caught_up()
            return 0
        try:
            if self._pending_seek:  # assigned during this getmany, offsets not loaded
                records = [r for r in records if r.tp not in self._pending_seek]
                await self._resolve_pending_seeks()
            applied = await self._apply_batch(records)
        except StaleOffsetsError as exc:
            log.warning(
                "stored offsets moved under us; rewinding", group=self.group_id, error=str(exc)
            )
            await self._rewind(records)
            return 0
        except BaseException:
            await self._rewind(records)
            raise
        if applied:
            await self._after_commit(applied)
        if len(records) < limit:  # a full batch says more is waiting: spare the round trip
            await self._note_caught_up()
        return len(applied)

    async def _note_caught_up(self) -> None:
        """Advance ``caught_up_at`` when every assigned partition is applied to its end.

        The instant is read *before* the end offsets: every record in the partitions at that
        instant lies below the end offsets read after it, so position == end proves it was
        applied (positions only pass what was applied and committed: a failed batch is
        rewound before this runs). With nothing assigned (joining, rebalancing) nothing is
        proven. A failing lag request just leaves the watermark where it was."""
        if self._clock is None:
            return
        tps = self.consumer.assignment()
        if not tps:
            return
        at = self._clock.now()
        try:
            lag = await self.consumer.lag()
        except RETRYABLE_ERRORS as exc:
            log.info("watermark lag check failed", group=self.group_id, error=repr(exc))
            return
        if lag != 0 or self.consumer.assignment() != tps:
            return
        if self.caught_up_at is None or at > self.caught_up_at:
            self.caught_up_at = at

    async def _apply_batch(self, records: Sequence[Record]) -> Sequence[Record]:
        started = time.perf_counter()
        async with self._lock:
            batch, next_offsets = _assigned_records(records, self.consumer.assignment())
            if not batch:
                return []
            try:
                async with UnitOfWork(self._sessions) as uow:
                    await self._apply(uow, batch)
                    if self._offsets is not None:
                        for tp, new in sorted(next_offsets.items()):
                            expected = self._stored.get(tp)
                            if not await self._offsets.advance(
                                uow.session, self.group_id, tp, expected, new
                            ):
                                raise StaleOffsetsError(f"{tp} expected {expected}")
                    await uow.commit()
            except BaseException:
                # (a failed COMMIT may still have committed: dropping kept state is safe)
                if self._on_rollback is not None:
                    self._on_rollback()
                raise
            if self._offsets is not None:
                self._stored.update(next_offsets)
            self._uncommitted.update(next_offsets)
        if self._metrics is not None:
            self._metrics.batch_latency.labels(self.group_id).observe(time.perf_counter() - started)
        return batch

    async def _after_commit(self, batch: Sequence[Record]) -> None:
        if self.storage is OffsetStorage.BROKER:
            await self._commit_broker()
        else:
            await self._commit_broker_best_effort()
        if self._metrics is not None:
            for topic, n in Counter(r.topic for r in batch).items():
                self._metrics.events_in.labels(self.group_id, topic).inc(n)
            # A metric is not worth failing a committed batch for.
            with contextlib.suppress(*RETRYABLE_ERRORS):
                self._metrics.consumer_lag.labels(self.group_id).set(await self.consumer.lag())

    async def _commit_broker(self) -> None:
        assigned = self.consumer.assignment()
        owed = {tp: o for tp, o in self._uncommitted.items() if tp in assigned}
        if owed:
            await self.consumer.commit(owed)
        self._uncommitted.clear()

    async def _commit_broker_best_effort(self) -> None:
        try:
            await self._commit_broker()
        except RETRYABLE_ERRORS as exc:
            log.info(
                "broker offset commit failed; retried later", group=self.group_id, error=repr(exc)
            )

    async def run_forever(self, stop: asyncio.Event, backoff: Backoff | None = None) -> None:
        """Run batches until ``stop`` is set; wait out database and broker outages."""
        backoff = backoff or Backoff()
        while not stop.is_set():
            try:
                processed = await self.run_once()
                await self._watch(processed)
            except RETRYABLE_ERRORS as exc:
                self.ready = False
                if self._metrics is not None:
                    self._metrics.consumer_errors.labels(self.group_id, type(exc).__name__).inc()
                delay = backoff.next_delay()
                log.warning(
                    "consumer batch failed; retrying",
                    group=self.group_id,
                    error=repr(exc),
                    retry_in_s=round(delay, 3),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                continue
            self.ready = True
            backoff.reset()

    async def _watch(self, processed: int) -> None:
        """Recreate the bus consumer when it returns nothing while records wait."""
        if self._watchdog is None:
            return
        # Lag is a broker round trip: ask only after an empty poll, the stall symptom.
        lag = await self.consumer.lag() if processed == 0 else 0
        if processed == 0 and self._metrics is not None:
            self._metrics.consumer_lag.labels(self.group_id).set(lag)
        if self._watchdog.observe(processed, lag):
            log.warning(
                "consumer made no progress while lagging; restarting it",
                group=self.group_id,
                lag=lag,
                stalled_s=round(self._watchdog.stalled_for(), 1),
            )
            await self.restart()
            self._watchdog.restarted()


def _assigned_records(
    records: Sequence[Record], assigned: set[TopicPartition]
) -> tuple[Sequence[Record], dict[TopicPartition, int]]:
    """The records of partitions still ``assigned`` (a revocation during the poll drops the
    rest) and each partition's next offset after them.

    One pass that builds a TopicPartition only when the partition changes: records of one
    partition arrive together, and ``Record.tp`` per record (three per record before) was a
    measurable share of a large batch's cost."""
    next_offsets: dict[TopicPartition, int] = {}
    kept: list[Record] = []
    dropped = False
    tp = TopicPartition("", -1)  # no record has partition -1
    keep = False
    best = 0  # next offset of ``tp`` so far; written back when the partition changes
    for r in records:
        if r.partition != tp.partition or r.topic != tp.topic:
            if keep:
                next_offsets[tp] = best
            tp = TopicPartition(r.topic, r.partition)
            keep = tp in assigned
            best = next_offsets.get(tp, 0)
        if not keep:
            dropped = True
            continue
        kept.append(r)
        if r.offset >= best:
            best = r.offset + 1
    if keep:
        next_offsets[tp] = best
    return (kept if dropped else records), next_offsets
