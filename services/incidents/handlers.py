"""Signals in, timers due, operator actions: each one unit of work (DESIGN sections 4–6, 12).

Every handler takes the unit of work, does its reads and writes through the cache and the
repository, and writes its lifecycle events to the outbox in the same transaction; only the
caller commits. Extension points for the voltage, SLA and impact code live on
:class:`HandlerContext` as hook lists; hooks run inside the cache lock and the transaction
(use :meth:`FeederStateCache.acquire` for more feeders, never take ``cache.lock`` again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
import structlog
from pydantic import ValidationError

from schemas.lifecycle import IncidentSnapshot
from schemas.parsing import parse_signal
from schemas.signals import Signal
from schemas.topics import DEAD_LETTER, DELIVERIES, LIFECYCLE, SIGNALS
from services.common.bus.base import Record
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.outbox import add_to_outbox, outbox_table
from services.incidents.domain.meter_state import SignalIn
from services.incidents.domain.model import Event, Incident
from services.incidents.feeder_cache import FeederStateCache
from services.incidents.state_store import IncidentMeta, mark_processed, processed_ids

log = structlog.get_logger(__name__)

SCHEMA = "incidents"
# kinds the correlator does not own wholly; they also go to the extra signal handlers
CORRELATOR_ONLY_KINDS = frozenset({"power_off", "power_on", "device_open", "device_close"})

SNAPSHOT_FIELDS = frozenset(IncidentSnapshot.model_fields)

SignalHook = Callable[[UnitOfWork, Sequence[Signal], "HandlerContext"], Awaitable[None]]
TimerHook = Callable[[UnitOfWork, datetime, "HandlerContext"], Awaitable[datetime | None]]
ChangedHook = Callable[[UnitOfWork, Sequence[Incident], "HandlerContext"], Awaitable[None]]
WakeSource = Callable[[UnitOfWork, "HandlerContext"], Awaitable[datetime | None]]


@dataclass(frozen=True, slots=True)
class IncidentTopics:
    """Physical topic names; a prefix isolates a test run on a shared broker."""

    signals: str = SIGNALS
    lifecycle: str = LIFECYCLE
    dead_letter: str = DEAD_LETTER
    deliveries: str = DELIVERIES

    @classmethod
    def prefixed(cls, prefix: str) -> IncidentTopics:
        return cls(*(prefix + t for t in (SIGNALS, LIFECYCLE, DEAD_LETTER, DELIVERIES)))


@dataclass(slots=True)
class HandlerContext:
    """What handlers need besides the unit of work; built once by the service.

    * ``extra_signal_handlers``: called with the batch's new signals of every kind except
      power_off/power_on/device_open/device_close (voltage, sag, swell, call_*, survey).
    * ``timer_hooks``: called by :func:`run_timers` to fire what is due; what they return
      is a wake-up too, but it predates the unit's saves, so timers belong in
      ``wake_sources``.
    * ``wake_sources``: asked by :func:`run_timers` for their earliest pending timer after
      everything of the unit was written (an incident a timer opened or changed has new
      deadlines by then).
    * ``incident_changed_hooks``: called after incidents were saved, with those incidents
      (held objects; mutate ``sla`` or call ``record`` on them — they are saved again and
      their new events go to the outbox).
    * ``owned_partitions``: the signals partitions this process holds now (None or empty:
      not known); :func:`run_timers` then fires only feeders on them or on no known one.
    """

    cache: FeederStateCache
    clock: Clock
    topics: IncidentTopics = field(default_factory=IncidentTopics)
    extra_signal_handlers: list[SignalHook] = field(default_factory=list)
    timer_hooks: list[TimerHook] = field(default_factory=list)
    incident_changed_hooks: list[ChangedHook] = field(default_factory=list)
    wake_sources: list[WakeSource] = field(default_factory=list)
    service: str = "incidents"
    owned_partitions: Callable[[], set[int] | None] | None = None

    def held_partitions(self) -> set[int] | None:
        """The signals partitions held now; None when not known (none held yet, or no
        ``owned_partitions``): then every feeder counts as this process's."""
        return (self.owned_partitions() if self.owned_partitions is not None else None) or None


def to_signal_in(s: Signal) -> SignalIn:
    """The correlator's view of a wire signal."""
    return SignalIn(
        signal_id=s.signal_id, kind=s.kind, feeder_id=s.feeder_id, occurred_at=s.occurred_at,
        source=s.source, device_id=s.device_id, transformer_id=s.transformer_id,
        meter_id=s.meter_id, customer_id=s.customer_id, received_at=s.received_at,
        data=s.data,
    )  # fmt: skip


async def apply_signals(uow: UnitOfWork, records: Sequence[Record], ctx: HandlerContext) -> int:
    """Apply a batch of ``grid.signals.v1`` records; the number of new signals applied.

    Unreadable records are dead-lettered (through the outbox); signals whose id was applied
    before change nothing. Feeders are locked in id order, so writers never deadlock.
    """
    session, cache = uow.session, ctx.cache
    now = ctx.clock.now()
    signals: list[Signal] = []
    for r in records:
        try:
            s = parse_signal(r.value)
        except ValidationError as exc:
            await _dead_letter(uow, r, exc, ctx, now)
            continue
        signals.append(s)
        cache.seen_on(s.feeder_id, r.partition)
    async with cache.lock:
        cache.begin()
        await cache.acquire(session, {s.feeder_id for s in signals})
        done = await processed_ids(session, [s.signal_id for s in signals])
        new: list[Signal] = []
        for s in signals:
            if s.signal_id not in done:
                done.add(s.signal_id)
                new.append(s)
        events: list[Event] = []
        for s in new:
            events.extend(cache.corr.apply(to_signal_in(s)))
        await mark_processed(session, [(s.signal_id, s.feeder_id) for s in new], now)
        extra = [s for s in new if s.kind not in CORRELATOR_ONLY_KINDS]
        if extra:
            for hook in ctx.extra_signal_handlers:
                await hook(uow, extra, ctx)
        await finish(uow, ctx, events, now)
    return len(new)


async def run_timers(uow: UnitOfWork, now: datetime, ctx: HandlerContext) -> datetime | None:
    """Fire the correlator timers due at ``now`` (and the timer hooks); the next wake-up.

    The wake-up is read after the unit's writes, so it covers every pending timer as it
    will be committed: the correlator's dwell, confirmation (the momentary boundary) and
    nested-check timers of every feeder (``feeder_versions.next_wake``), and the
    ``wake_sources`` (SLA deadlines, including those of incidents this run opened or changed).
    Voltage incidents have no timers: a monitor changes only when a reading or report arrives.
    """
    session, cache = uow.session, ctx.cache
    from services.incidents.state_store import due_feeders, earliest_wake

    # With several consumers each fires the feeders of the partitions it holds (its own
    # watermark judged them); the new owner fires them after a rebalance.
    owned = ctx.held_partitions()
    async with cache.lock:
        cache.begin()
        feeders = set(await due_feeders(session, now, owned))
        part = cache.feeder_partition
        feeders |= {f for f in cache.due_feeders(now) if owned is None or part.get(f) in owned
                    or f not in part}  # fmt: skip
        await cache.acquire(session, feeders)
        events = cache.corr.run_due(now).events if feeders else []
        # Saved before the hooks run, so an incident a timer just opened has its deadlines
        # and the hooks fire what of them is already due (a dwell-opened outage is detected
        # at its first evidence, 5 min ago: acknowledge is due now).
        await finish(uow, ctx, events, now)
        wakes: list[datetime] = []
        for hook in ctx.timer_hooks:
            wake = await hook(uow, now, ctx)
            if wake is not None:
                wakes.append(wake)
        for source in ctx.wake_sources:
            wake = await source(uow, ctx)
            if wake is not None:
                wakes.append(wake)
        stored = await earliest_wake(session, owned)
    if stored is not None:
        wakes.append(stored)
    return min(wakes, default=None)


async def finish(
    uow: UnitOfWork,
    ctx: HandlerContext,
    events: list[Event],
    now: datetime,
    extra: list[Incident] | None = None,
    metas: Mapping[str, IncidentMeta] | None = None,
) -> list[Incident]:
    """Save what changed, run the changed-incident hooks, queue every event in the outbox.

    For handlers and hooks that mutate the cache's correlator (or incidents loaded on their
    own, passed as ``extra`` with the ``metas`` they were loaded with) after
    :meth:`FeederStateCache.acquire`. The metas of both saves are kept here, so an incident
    the cache does not hold (closed, voltage) or stops holding (just finished) is saved the
    second time from what the first save wrote, never from scratch.
    """
    cache = ctx.cache
    used: dict[str, IncidentMeta] = dict(metas or {})
    changed = await cache.save(uow.session, now, extra, used)
    if changed and ctx.incident_changed_hooks:
        for hook in ctx.incident_changed_hooks:
            await hook(uow, changed, ctx)
        again = [i for i in changed if i.events or i.snapshot() != used[i.id].snapshot]
        for inc in again:
            events.extend(inc.drain_events())
        if again:
            await cache.save(uow.session, now, again, used)
        fill_sla(events, changed)
    await _outbox(uow, ctx, events, now)
    return changed


def fill_sla(events: Sequence[Event], incidents: Sequence[Incident]) -> None:
    """Give events recorded before their incident's first SLA refresh (its ``sla`` was
    still empty) the statuses the refresh computed in this unit of work, so a consumer sees
    SLA targets in every snapshot of an incident that has any (one that ended before a target
    fell due, e.g. opened and merged in one batch, has none: ``sla`` stays empty)."""
    by_id = {i.id: i for i in incidents}
    for e in events:
        inc = by_id.get(e.incident_id)
        if inc is not None and inc.sla and not e.incident.get("sla"):
            e.incident["sla"] = dict(inc.sla)


def wire_message(e: Event) -> dict[str, Any]:
    """The event as ``incidents.lifecycle.v1`` carries it: the snapshot is cut to the fields
    of the wire contract (which forbids unknown ones); the database keeps the full one."""
    message = e.to_message()
    message["incident"] = {k: v for k, v in e.incident.items() if k in SNAPSHOT_FIELDS}
    return message


async def _outbox(uow: UnitOfWork, ctx: HandlerContext, events: list[Event], now: datetime) -> None:
    """Queue the events in the outbox in one statement, in their order (the relay's order)."""
    await queue_events(
        uow, [(ctx.topics.lifecycle, e.incident_id, orjson.dumps(wire_message(e)), e.seq)
              for e in events], now,
    )  # fmt: skip


async def queue_events(
    uow: UnitOfWork, messages: Sequence[tuple[str, str, bytes, int]], now: datetime
) -> None:
    """Insert ``(topic, incident_id, payload, seq)`` outbox rows, keyed and aggregated by
    the incident, with one statement (rows get ascending ids in the given order)."""
    if not messages:
        return
    await uow.session.execute(
        sa.insert(outbox_table(SCHEMA)),
        [
            {"aggregate_id": iid, "seq": seq, "topic": topic, "key": iid, "payload": payload,
             "created_at": now}
            for topic, iid, payload, seq in messages
        ],
    )  # fmt: skip


async def _dead_letter(
    uow: UnitOfWork, r: Record, exc: ValidationError, ctx: HandlerContext, now: datetime
) -> None:
    errors = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    code = "invalid_json" if first.get("type") == "json_invalid" else "schema"
    path = "$" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in first.get("loc", ()))
    try:
        value, encoding = r.value.decode(), None
    except UnicodeDecodeError:
        import base64

        value, encoding = base64.b64encode(r.value).decode(), "base64"
    key = None if r.key is None else r.key.decode(errors="replace")
    letter = {
        "service": ctx.service, "topic": r.topic, "partition": r.partition, "offset": r.offset,
        "key": key, "value": value,
        "encoding": encoding,
        "error": {"code": code, "message": str(first.get("msg", exc)), "path": path},
        "failed_at": now.astimezone(UTC).isoformat(),
    }  # fmt: skip
    log.warning("signal dead-lettered", topic=r.topic, partition=r.partition, offset=r.offset)
    await add_to_outbox(
        uow.session,
        ctx.topics.dead_letter,
        key,
        orjson.dumps(letter),
        f"dead-letter:{r.topic}:{r.partition}:{r.offset}",
        1,
        schema=SCHEMA,
        created_at=now,
    )
