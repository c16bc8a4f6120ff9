"""Apply a batch of ``incidents.lifecycle.v1`` records: decide, store jobs, remember events.

Runs inside the consumer's unit of work (:class:`BatchConsumer` with
``OffsetStorage.DATABASE``), so the jobs, the decision state, the processed event ids and
the consumed offsets commit together or not at all (DESIGN section 4). A redelivered event
is skipped by its ``event_id``; a job whose idempotency key exists is not inserted twice.
An unreadable event is dead-lettered through the notify outbox (same transaction).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from schemas.topics import DEAD_LETTER
from services.common.bus.base import Record
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.outbox import add_to_outbox
from services.common.topology.model import Topology
from services.notify.domain.decisions import NotifyPolicy, decide, touched_incidents
from services.notify.domain.job_state import JobStatus
from services.notify.domain.model import EventFormatError, JobKey, JobSpec, LifecycleEvent
from services.notify.indexed_state import IndexedNotifyState
from services.notify.repository import Baseline, StateRepository
from services.notify.shallow import shallow_copy

log = structlog.get_logger(__name__)

SCHEMA = "notify"
SERVICE = "notify"


@dataclass(slots=True)
class LifecycleContext:
    """What the handler needs besides the unit of work."""

    policy: NotifyPolicy
    clock: Clock
    topology: Callable[[], Topology]


@dataclass(slots=True)
class StateCache:
    """The decision state kept from one lifecycle batch to the next, for a notify process
    that is the only writer of the notify schema (the demo, or a single notify replica):
    without it every batch loads its incidents' whole families (all their interruptions
    and jobs) again.

    What it holds is what the last committed batch saved, so it stays exact as long as
    (1) no other process writes notify state, (2) the sender reports the jobs it cancels
    (:meth:`cancelled`; the only job change decisions look at) and (3) the owner calls
    :meth:`clear` when a batch does not commit. A sender committing while a family is
    being read (between :meth:`loading` and :meth:`loaded`) may have committed after the
    read: its outcomes are applied again to what the read brought in.

    ``whole``: the cache holds every incident, interruption and job of the notify schema,
    jobs in creation (id) order, with the sender's committed cancellations and sends
    (:meth:`sent`): set by the owner when it starts on an empty schema, and unset for good
    by :meth:`clear` or a family walk the budget stopped. The sender then re-checks its
    rounds on this state instead of reading it back (:mod:`services.notify.sender_view`).
    """

    state: IndexedNotifyState = field(default_factory=IndexedNotifyState)
    base: Baseline = field(default_factory=Baseline)
    whole: bool = False
    # outcomes committed while a family load is in flight (None: no load in flight)
    _during_load: dict[JobKey, JobStatus] | None = None

    def clear(self) -> None:
        self.state, self.base = IndexedNotifyState(), Baseline()
        self.whole = False
        self._during_load = None

    @property
    def size(self) -> int:
        """Rows held (jobs and interruptions): what its memory grows with."""
        return len(self.state.jobs) + len(self.state.interruptions)

    def loading(self) -> None:
        """A family load's first query is about to run."""
        self._during_load = {}

    def loaded(self) -> None:
        """The load has put its rows into the state (no await since)."""
        during, self._during_load = self._during_load or {}, None
        jobs = self.state.jobs
        for key, status in during.items():
            job = jobs.get(key)
            if job is not None:
                jobs[key] = shallow_copy(job, status=status)

    def cancelled(self, keys: Sequence[JobKey]) -> None:
        """Jobs the sender cancelled (committed)."""
        self._set_status(keys, JobStatus.CANCELLED)

    def sent(self, keys: Sequence[JobKey]) -> None:
        """Jobs the sender sent (committed)."""
        self._set_status(keys, JobStatus.SENT)

    def _set_status(self, keys: Sequence[JobKey], status: JobStatus) -> None:
        if self._during_load is not None:
            self._during_load.update(dict.fromkeys(keys, status))
        jobs = self.state.jobs
        for key in keys:
            job = jobs.get(key)
            if job is not None:
                jobs[key] = shallow_copy(job, status=status)


@dataclass(slots=True)
class BatchResult:
    events: int = 0
    skipped: int = 0
    jobs: list[JobSpec] = field(default_factory=list)
    dead_letters: int = 0


async def apply_lifecycle(
    uow: UnitOfWork,
    records: Sequence[Record],
    ctx: LifecycleContext,
    cache: StateCache | None = None,
) -> BatchResult:
    """Decide and store the jobs of a batch of lifecycle records (caller commits); with
    ``cache``, on the state the previous batches left there (see :class:`StateCache`)."""
    repo = StateRepository(uow.session)
    result = BatchResult()
    parsed: list[LifecycleEvent] = []
    for record in records:
        try:
            parsed.append(LifecycleEvent.from_dict(orjson.loads(record.value)))
        except (orjson.JSONDecodeError, EventFormatError) as exc:
            code = "invalid_json" if isinstance(exc, orjson.JSONDecodeError) else "schema"
            await _dead_letter(uow, record, code, str(exc), ctx)
            result.dead_letters += 1
    done = await repo.processed([e.event_id for e in parsed])
    state, base = (cache.state, cache.base) if cache is not None else (IndexedNotifyState(),
                                                                       Baseline())  # fmt: skip
    fresh: list[str] = []
    touched: set[str] = set()
    for event in parsed:
        if event.event_id in done:
            result.skipped += 1
            continue
        done.add(event.event_id)  # a batch may hold the same event twice
        if cache is not None:
            cache.loading()
        complete = await repo.load_family(state, base, _seeds(event))
        if cache is not None:
            cache.loaded()
            cache.whole = cache.whole and complete  # linked incidents left out?
        result.jobs.extend(decide(event, state, ctx.policy))
        touched |= touched_incidents(event)
        fresh.append(event.event_id)
        result.events += 1
    now = ctx.clock.now()
    await repo.save(state, base, touched)
    await repo.insert_jobs(result.jobs, now)
    topology = ctx.topology()
    critical = [
        s
        for s in result.jobs
        if s.stage == "outage_detected"
        and (c := topology.customers.get(s.customer_id)) is not None
        and c.critical
    ]
    await repo.add_escalations(critical)
    await repo.mark_processed(fresh, now)
    if result.jobs or result.skipped:
        log.info(
            "lifecycle batch applied",
            events=result.events,
            skipped=result.skipped,
            jobs=len(result.jobs),
            escalations=len(critical),
        )
    return result


def _seeds(event: LifecycleEvent) -> list[str]:
    """Incidents whose state the event needs: itself, and what it links to."""
    snap = event.incident
    seeds = [event.incident_id]
    for name in ("parent_incident_id", "merged_into"):
        value = snap.get(name)
        if isinstance(value, str):
            seeds.append(value)
    seeds.extend(e.moved_from for e in event.customers_added if e.moved_from)
    return seeds


async def _dead_letter(
    uow: UnitOfWork, record: Record, code: str, message: str, ctx: LifecycleContext
) -> None:
    try:
        value, encoding = record.value.decode("utf-8"), None
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(record.value).decode(), "base64"
    letter: dict[str, Any] = {
        "service": SERVICE,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "value": value,
        "error": {"code": code, "message": message[:500], "path": None},
        "failed_at": ctx.clock.now().isoformat(),
    }
    if encoding:
        letter["encoding"] = encoding
    log.warning("lifecycle event dead-lettered", code=code, offset=record.offset)
    await add_to_outbox(
        uow.session,
        DEAD_LETTER,
        letter["key"],
        orjson.dumps(letter),
        f"dlq:{record.topic}:{record.partition}",
        record.offset,
        schema=SCHEMA,
        created_at=ctx.clock.now(),
    )
