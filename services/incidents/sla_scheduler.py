"""The SLA clock wired to incidents (DESIGN section 7).

* :class:`SlaRefresh` (an ``incident_changed_hooks`` entry): after an incident changed,
  recompute its deadline rows (keeping the emitted flags) and the snapshot's ``sla`` map.
* :class:`OwedSlaRefresh` (a ``timer_hooks`` entry, first): refresh the incidents whose
  first notice another process recorded (it leaves them to the feeder's owner).
* :class:`SlaScheduler` (a ``timer_hooks`` entry): at ``now``, emit every owed
  ``sla_at_risk`` / ``sla_breached`` through the incident aggregate (so it gets the next
  ``seq``) and mark it emitted in the same transaction; its ``next_wake`` (a ``wake_sources``
  entry) is the earliest pending deadline, read after the unit's saves.
  The flags are durable, so after a restart nothing is emitted twice and nothing is skipped.

The ``first_notice`` target completes at the incident's first message to a customer, known
from ``notify.deliveries.v1`` (``first_notices``); planned incidents have no deadline rows
here (their notice target belongs to planned-outage scheduling).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, cast

import sqlalchemy as sa

from services.common.db import UnitOfWork
from services.common.policy import Policy
from services.common.topology.model import Area
from services.incidents import orm
from services.incidents.domain import policy_rules, sla_clock
from services.incidents.domain.model import Incident
from services.incidents.domain.sla_clock import IncidentTimes, SlaEvent
from services.incidents.incident_writer import save_changed
from services.incidents.notice_store import first_notice_ats
from services.incidents.sla_store import (
    due_rows,
    earliest_owed,
    load_rows_many,
    next_pending,
    owed_refreshes,
    save_rows_many,
    set_flags,
    settle_refreshes,
)
from services.incidents.state_store import IncidentMeta, load_incidents

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.incidents.handlers import HandlerContext

ACTOR = "sla_clock"
ENDED_ANOTHER_WAY = frozenset({"momentary", "cancelled", "merged"})


def incident_times(inc: Incident, first_notice: datetime | None, now: datetime) -> IncidentTimes:
    """The SLA-relevant timestamps of an incident.

    Once customers are back (restored, resolved) or the incident ended another way, targets
    that were still open and not yet due are dropped (``ended_at``): a crew owes no arrival
    after a remote restoration.
    """
    ended: datetime | None = None
    if inc.restored_at is not None:
        ended = inc.restored_at
    elif inc.status in ENDED_ANOTHER_WAY:
        ended = inc.closed_at or now
    return IncidentTimes(
        kind="voltage" if inc.kind == "voltage" else "outage",
        detected_at=inc.detected_at, acknowledged_at=inc.acknowledged_at,
        crew_arrived_at=inc.arrived_at, restored_at=inc.restored_at,
        first_notice_at=first_notice, ended_at=ended,
    )  # fmt: skip


class SlaRefresh:
    """``incident_changed_hooks`` entry: keep deadline rows and ``sla`` current."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def __call__(
        self, uow: UnitOfWork, incidents: Sequence[Incident], ctx: HandlerContext
    ) -> None:
        await refresh_incidents(uow.session, incidents, self.policy, ctx.clock.now())


async def refresh_incident(
    session: AsyncSession, inc: Incident, policy: Policy, now: datetime
) -> None:
    """Recompute one incident's deadline rows (flags kept) and its ``sla`` summary."""
    await refresh_incidents(session, [inc], policy, now)


async def refresh_incidents(
    session: AsyncSession, incidents: Sequence[Incident], policy: Policy, now: datetime
) -> None:
    """:func:`refresh_incident` for several incidents, with one read of their first
    notices, one of their deadline rows and one upsert."""
    todo = {inc.id: inc for inc in incidents if inc.kind != "planned"}
    if not todo:
        return
    ids = sorted(todo)
    notices = await first_notice_ats(session, ids)
    stored = await load_rows_many(session, ids)
    batches = []
    for iid in ids:
        inc = todo[iid]
        targets = policy_rules.sla_targets(policy, cast(Area, inc.area))
        times = incident_times(inc, notices.get(iid), now)
        known = stored.rows.get(iid, {})
        rows = [
            sla_clock.refresh(known.get(r.target), r)
            for r in sla_clock.deadline_rows(iid, times, targets)
        ]
        states = {s.target: s for s in sla_clock.evaluate(times, targets, now)}
        batches.append((inc.area, rows, states))
        inc.sla = {t: s.status for t, s in states.items()}
    await save_rows_many(session, batches, stored)


class OwedSlaRefresh:
    """``timer_hooks`` entry, before :class:`SlaScheduler`: refresh the incidents whose SLA
    another process's deliveries consumer left to this one (their feeders' owner), so the
    deadlines it fires next already count those first notices. :meth:`next_wake` (a
    ``wake_sources`` entry): when the oldest of them was owed."""

    def __init__(self) -> None:
        self.refreshed = 0

    async def __call__(
        self, uow: UnitOfWork, now: datetime, ctx: HandlerContext
    ) -> datetime | None:
        session = uow.session
        ids = await owed_refreshes(session, ctx.held_partitions())
        if ids:
            incidents, metas = await held_or_loaded(session, ids, ctx)
            await save_changed(uow, ctx, incidents, metas, now)  # the SLA refresh is a hook
            await settle_refreshes(session, ids)
            self.refreshed += len(incidents)
        return None

    async def next_wake(self, uow: UnitOfWork, ctx: HandlerContext) -> datetime | None:
        return await earliest_owed(uow.session, ctx.held_partitions())


class SlaScheduler:
    """``timer_hooks`` entry: emit owed SLA events exactly once; :meth:`next_wake` (a
    ``wake_sources`` entry) gives the earliest pending deadline."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.emitted = 0

    async def __call__(
        self, uow: UnitOfWork, now: datetime, ctx: HandlerContext
    ) -> datetime | None:
        session = uow.session
        rows = await due_rows(session, now, ctx.held_partitions())
        owed = sla_clock.due_events(rows, now)
        if owed:
            by_incident: dict[str, list[SlaEvent]] = defaultdict(list)
            for e in owed:
                by_incident[e.incident_id].append(e)
            incidents, metas = await held_or_loaded(session, sorted(by_incident), ctx)
            by_key = {(r.incident_id, r.target): r for r in rows}
            for inc in incidents:
                for e in by_incident[inc.id]:
                    word = "at risk" if e.type == "sla_at_risk" else "breached"
                    inc.sla[e.target] = "at_risk" if e.type == "sla_at_risk" else "breached"
                    inc.record(e.type, e.occurred_at, ACTOR,
                               f"{e.target} {word} (due {e.due_at.isoformat()})")  # fmt: skip
                    row = by_key[(e.incident_id, e.target)] = sla_clock.mark_emitted(
                        by_key[(e.incident_id, e.target)], e
                    )
                    await set_flags(session, row)
                    self.emitted += 1
            await save_changed(uow, ctx, incidents, metas, now)
        return None  # the next deadline is read after the unit's saves: see next_wake

    async def next_wake(self, uow: UnitOfWork, ctx: HandlerContext) -> datetime | None:
        """``wake_sources`` entry: the earliest instant some deadline row owes an event."""
        return await next_pending(uow.session, ctx.held_partitions())


async def held_or_loaded(
    session: AsyncSession, ids: Sequence[str], ctx: HandlerContext
) -> tuple[list[Incident], dict[str, IncidentMeta]]:
    """The incidents (their feeders acquired), as held by the correlator cache when it holds
    them, else loaded with their metas; unknown ids are left out."""
    t = orm.incidents
    feeders = {
        r.feeder_id for r in await session.execute(sa.select(t.c.feeder_id).where(t.c.id.in_(ids)))
    }
    await ctx.cache.acquire(session, feeders)
    held = {i: inc for i in ids if (inc := ctx.cache.incident(i)) is not None}
    missing = [i for i in ids if i not in held]
    metas: dict[str, IncidentMeta] = {}
    if missing:
        loaded, metas = await load_incidents(session, t.c.id.in_(missing))
        held.update(loaded)
    return [held[i] for i in ids if i in held], metas
