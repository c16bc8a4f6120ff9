"""Save incidents changed by the voltage, SLA and impact code, with their lifecycle events.

Incidents the correlator holds (open or restored outages) go through ``handlers.finish``
(saved by the feeder cache, feeders bumped, changed-hooks run, events to the outbox).
Incidents it does not hold — voltage incidents, closed outages — have no cached metadata
there, so they are saved here with the metadata they were loaded with (or a fresh one for a
new incident): the changed-hooks run first, then the row and timeline are written and the
events queued in the outbox, all in the caller's transaction. Both paths give each event
the aggregate's next gapless ``seq``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from services.common.db import UnitOfWork
from services.incidents.domain.model import Incident
from services.incidents.state_store import IncidentMeta, save_incidents

if TYPE_CHECKING:
    from services.incidents.handlers import HandlerContext

SCHEMA = "incidents"


async def save_changed(
    uow: UnitOfWork,
    ctx: HandlerContext,
    incidents: Sequence[Incident],
    metas: Mapping[str, IncidentMeta],
    now: datetime,
) -> None:
    """Save ``incidents`` (their feeders already acquired) and queue their events."""
    from services.incidents.handlers import fill_sla, finish, queue_events

    held = [i for i in incidents if ctx.cache.incident(i.id) is i]
    loose = [i for i in incidents if ctx.cache.incident(i.id) is not i]
    if held:
        events = [e for inc in held for e in inc.drain_events()]
        await finish(uow, ctx, events, now, extra=held)
    if not loose:
        return
    for hook in ctx.incident_changed_hooks:
        await hook(uow, loose, ctx)
    messages: list[tuple[str, str, bytes, int]] = []
    for inc in loose:
        events = inc.drain_events()
        fill_sla(events, [inc])
        messages += [
            (ctx.topics.lifecycle, e.incident_id, orjson.dumps(e.to_message()), e.seq)
            for e in events
        ]
    pairs = [(inc, metas.get(inc.id) or IncidentMeta()) for inc in loose]
    await save_incidents(uow.session, pairs, now, ctx.cache.topology)
    await queue_events(uow, messages, now)
