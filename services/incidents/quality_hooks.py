"""Plug voltage monitoring, the SLA clock, satisfaction impact and first notices into the
incidents service's :class:`~services.incidents.handlers.HandlerContext`.

``install(ctx, policy, tz)`` registers the hooks (one line in the service's wiring);
:func:`apply_deliveries` is the unit-of-work handler for ``notify.deliveries.v1`` (its own
consumer group, offsets stored in ``incidents.consumer_offsets`` with the effects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.topics import DELIVERIES, TOPICS
from services.common.bus.base import Bus, Record
from services.common.bus.watchdog import ProgressWatchdog
from services.common.consumer_loop import BatchConsumer, OffsetStorage
from services.common.db import UnitOfWork
from services.common.policy import Policy
from services.incidents.customer_messages import record_last_messages
from services.incidents.impact_store import ImpactRecorder
from services.incidents.incident_writer import save_changed
from services.incidents.notice_store import Notice, first_notice_ats, record_first_notices
from services.incidents.quality_signals import QualitySignals
from services.incidents.sla_scheduler import (
    OwedSlaRefresh,
    SlaRefresh,
    SlaScheduler,
    held_or_loaded,
)
from services.incidents.sla_store import foreign_incidents, owe_refresh
from services.incidents.voltage_watch import VoltageWatch

if TYPE_CHECKING:
    from services.incidents.handlers import HandlerContext

log = structlog.get_logger(__name__)

DELIVERIES_GROUP = "incidents-deliveries"
# A survey invitation is not a notice about the interruption.
NOT_A_NOTICE = frozenset({"survey"})


@dataclass(slots=True)
class QualityHooks:
    """The installed hooks (their counters are handy in tests and metrics)."""

    watch: VoltageWatch
    signals: QualitySignals
    sla_refresh: SlaRefresh
    owed_sla_refresh: OwedSlaRefresh
    sla_scheduler: SlaScheduler
    impact: ImpactRecorder


def install(
    ctx: HandlerContext,
    policy: Policy,
    tz: ZoneInfo | str = "Asia/Shanghai",
    impact_refresh: timedelta = timedelta(seconds=300),
) -> QualityHooks:
    """Register the voltage/report signal handler, the SLA refresh and impact recorder (on
    incident changes; its refreshes are a timer) and the SLA scheduler (a timer hook) on
    ``ctx``."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    watch = VoltageWatch(lambda: ctx.cache.topology, policy)
    hooks = QualityHooks(
        watch=watch,
        signals=QualitySignals(watch, zone),
        sla_refresh=SlaRefresh(policy),
        owed_sla_refresh=OwedSlaRefresh(),
        sla_scheduler=SlaScheduler(policy),
        impact=ImpactRecorder(lambda: ctx.cache.topology, policy, impact_refresh),
    )
    ctx.extra_signal_handlers.append(hooks.signals)
    # impact first: it reads nothing the SLA refresh writes, and both see the same state
    ctx.incident_changed_hooks.append(hooks.impact)
    ctx.incident_changed_hooks.append(hooks.sla_refresh)
    ctx.timer_hooks.append(hooks.owed_sla_refresh)  # before the deadlines it may move
    ctx.wake_sources.append(hooks.owed_sla_refresh.next_wake)
    ctx.timer_hooks.append(hooks.sla_scheduler)
    ctx.wake_sources.append(hooks.sla_scheduler.next_wake)
    # Impact refreshes ride on the timer runs (the service runs them at least every
    # incidents_timer_poll_s) and are no wake-up of their own: a bookkeeping refresh must not
    # add steps to the demo's virtual clock, which would change how it groups the replay.
    ctx.timer_hooks.append(hooks.impact.run_due)
    return hooks


async def apply_deliveries(
    uow: UnitOfWork,
    records: Sequence[Record],
    ctx: HandlerContext,
    impact: ImpactRecorder | None = None,
) -> int:
    """Record first notices from ``notify.deliveries.v1``; refresh the SLA of incidents whose
    first notice moved earlier; owe ``impact`` a re-record of restored or closed incidents
    whose customers' first notices changed otherwise. Returns the number of incidents with
    a first notice recorded."""
    session = uow.session
    adapter = TOPICS[DELIVERIES].adapter
    delivered = []
    for r in records:
        try:
            d = adapter.validate_json(r.value)
        except ValidationError:
            log.warning("unreadable delivery skipped", topic=r.topic, offset=r.offset)
            continue
        if d.status == "sent":
            delivered.append(d)
    if not delivered:
        return 0
    sent = [d for d in delivered if d.stage not in NOT_A_NOTICE]
    # The cache lock before the first write: on SQLite the transaction's first statement
    # takes the database write lock, and a writer holding it must not wait for this lock.
    async with ctx.cache.lock:
        # any message, survey invitations too, is the customer's last one (call-centre lookup)
        await record_last_messages(session, delivered)
        notices = [Notice(d.incident_id, d.customer_id, d.occurred_at, d.stage, d.channel)
                   for d in sent]  # fmt: skip
        before = await first_notice_ats(session, [n.incident_id for n in notices])
        changed = await record_first_notices(session, notices)
        if not changed:
            return 0
        # The SLA sees only an incident's earliest notice. Saving an incident for a later
        # customer's notice changed nothing but its version, and the feeder's writer token
        # with it: a storm's notices then made the feeder's owner reload it whole.
        moved = sorted({
            n.incident_id for n in notices
            if n.incident_id in changed
            and ((prior := before.get(n.incident_id)) is None or n.sent_at < prior)
        })  # fmt: skip
        if impact is not None:
            await impact.owe(session, sorted(changed - set(moved)), ctx.clock.now())
        # Another consumer's incidents are left to it: locking their feeders would wait for
        # its batch in flight, holding this process's cache lock, and make it reload them.
        foreign = await foreign_incidents(session, moved, ctx.held_partitions())
        if foreign:
            await owe_refresh(session, sorted(foreign), ctx.clock.now())
            moved = [i for i in moved if i not in foreign]
        if moved:
            ctx.cache.begin()
            # locks the feeders, then takes held incidents from the cache, loads the others
            incidents, metas = await held_or_loaded(session, moved, ctx)
            await save_changed(uow, ctx, incidents, metas, ctx.clock.now())
    return len(changed)


def deliveries_consumer(
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    ctx: HandlerContext,
    *,
    topic: str = DELIVERIES,
    group_id: str = DELIVERIES_GROUP,
    batch_size: int = 500,
    poll_timeout_s: float = 1.0,
    watchdog: ProgressWatchdog | None = None,
    impact: ImpactRecorder | None = None,
) -> BatchConsumer:
    """The ``notify.deliveries.v1`` consumer (group ``incidents-deliveries``, offsets in
    ``incidents.consumer_offsets`` written with the first notices); ``start()`` it and call
    ``run_once()`` / ``run_forever()`` like the signals consumer (``run_forever`` restarts
    it when ``watchdog`` says it stalled)."""

    async def apply(uow: UnitOfWork, records: Sequence[Record]) -> None:
        await apply_deliveries(uow, records, ctx, impact)

    return BatchConsumer(
        bus, [topic], group_id=group_id, sessions=sessions, apply=apply,
        storage=OffsetStorage.DATABASE, schema="incidents", batch_size=batch_size,
        poll_timeout_s=poll_timeout_s, client_id="incidents-deliveries", watchdog=watchdog,
    )  # fmt: skip
