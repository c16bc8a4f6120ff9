"""Operator actions on incidents (DESIGN sections 6 and 12), one unit of work each.

:func:`perform_action` locks the incident's feeder (and the survivor's, for a merge), makes
the cache current, checks the ``If-Match`` version, applies the action through the
correlator (or, for an incident it does not hold — voltage, planned, finished outages — with
the lifecycle functions on a copy loaded from the database under the same feeder lock, per
the kind's transition table), saves (both through ``handlers.finish``), queues the
lifecycle events and appends an audit row with the snapshots before and after, all in the
caller's transaction. Errors are the typed ones of :mod:`services.incidents.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.incidents import orm
from services.incidents.domain import lifecycle
from services.incidents.domain.model import Event, Incident
from services.incidents.domain.rollup import Point
from services.incidents.errors import InvalidRequest, InvalidTransition, NotFound, VersionMismatch
from services.incidents.handlers import HandlerContext, finish
from services.incidents.incident_queries import IncidentDetail, get_incident
from services.incidents.state_store import IncidentMeta, load_incidents

ACTIONS = (
    "acknowledge", "crew", "arrived", "etr", "restore", "close", "cancel", "merge", "notes",
    "split",
)  # fmt: skip


async def perform_action(
    uow: Any,
    incident_id: str,
    action: str,
    params: Mapping[str, Any],
    actor: str,
    if_match_version: int | None,
    ctx: HandlerContext,
) -> IncidentDetail:
    """Apply one operator action; the incident's new detail (with its new ``version``).

    Raises NotFound (404), VersionMismatch (412), InvalidTransition (409, with the allowed
    statuses) or InvalidRequest (422). ``if_match_version=None`` skips the version check.
    """
    if action not in ACTIONS:
        raise InvalidRequest(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    session, cache = uow.session, ctx.cache
    now = ctx.clock.now()
    # The cache lock before the first statement: on SQLite a transaction's first statement
    # takes the database write lock, and whoever holds the cache lock may be waiting for it.
    async with cache.lock:
        head = await _head(session, incident_id)
        if head is None:
            raise NotFound(f"incident {incident_id} not found")
        feeders = {head.feeder_id}
        into_id = str(params.get("into") or "") if action == "merge" else ""
        if action == "merge":
            into = await _head(session, into_id)
            if into is None:
                raise InvalidRequest(f"merge target {into_id!r} not found")
            feeders.add(into.feeder_id)
        cache.begin()
        await cache.acquire(session, feeders)
        head = await _head(session, incident_id)  # re-read under the feeder lock
        assert head is not None
        if if_match_version is not None and head.version != if_match_version:
            raise VersionMismatch(incident_id, if_match_version, head.version)
        held = cache.incident(incident_id)
        extra: list[Incident] = []
        metas: dict[str, IncidentMeta] = {}
        if held is None:  # voltage, planned, finished outages: loaded on their own
            incs, metas = await load_incidents(session, orm.incidents.c.id == incident_id)
            held = incs[incident_id]
            extra.append(held)
        try:
            events = _dispatch(ctx, held, extra, action, params, actor, now, into_id)
        except lifecycle.InvalidTransition as exc:
            raise InvalidTransition(str(exc), exc.current, exc.allowed) from exc
        except (ValueError, KeyError) as exc:
            raise InvalidRequest(str(exc)) from exc
        if action == "notes":
            await session.execute(
                sa.insert(orm.notes).values(
                    incident_id=incident_id, at=now, actor=actor, text=str(params["text"])
                )
            )
        if action == "crew":
            await session.execute(
                sa.update(orm.crews)
                .where(orm.crews.c.id == str(params["crew_id"]))
                .values(status="dispatched", current_incident_id=incident_id, updated_at=now)
            )
        await finish(uow, ctx, events, now, extra, metas)
        await session.execute(
            sa.insert(orm.audit).values(
                at=now,
                actor=actor,
                action=action,
                incident_id=incident_id,
                before=head.snapshot,
                after=cache_snapshot(held),
            )  # fmt: skip
        )
    detail = await get_incident(session, incident_id)
    assert detail is not None
    return detail


def cache_snapshot(inc: Incident) -> dict[str, Any]:
    return inc.snapshot()


def _dispatch(
    ctx: HandlerContext,
    inc: Incident,
    extra: list[Incident],
    action: str,
    params: Mapping[str, Any],
    actor: str,
    now: datetime,
    into_id: str,
) -> list[Event]:
    corr = ctx.cache.corr
    standalone = bool(extra)

    def act(fn: Callable[[Incident], object]) -> list[Event]:
        if standalone:
            fn(inc)
            return inc.drain_events()
        return corr.act(inc.id, fn)

    def when(key: str) -> datetime:
        value = params.get(key)
        if value is None:
            return now
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

    if action == "notes":
        text = str(params.get("text") or "").strip()
        if not text:
            raise InvalidRequest("a note needs text")
        return act(lambda i: lifecycle.add_note(i, text, now, actor))
    if inc.kind == "planned":  # its planned_outages row moves with it: planned-outages API
        raise InvalidTransition(
            f"planned incident {inc.id}: {action} goes through /api/v1/planned-outages",
            inc.status,
            lifecycle.allowed_transitions(inc),
        )
    if action == "acknowledge":
        return act(lambda i: lifecycle.acknowledge(i, now, actor))
    if action == "crew":
        crew = str(params.get("crew_id") or "")
        if not crew:
            raise InvalidRequest("crew_id is required")
        return act(lambda i: lifecycle.assign_crew(i, crew, now, actor))
    if action == "arrived":
        at = when("at")
        return act(lambda i: lifecycle.arrive(i, at, actor))
    if action == "etr":
        if params.get("etr") is None:
            raise InvalidRequest("etr is required")
        etr, reason = when("etr"), str(params.get("reason") or "")
        return act(lambda i: lifecycle.set_etr(i, etr, now, actor, reason))
    if action == "close":
        cause = str(params.get("cause") or "")
        if not cause:
            raise InvalidRequest("cause is required")
        if standalone:
            return act(lambda i: lifecycle.close(i, cause, now, actor))
        return corr.close(inc.id, cause, now, actor)
    if action == "cancel":
        reason = str(params.get("reason") or "cancelled")
        if standalone:
            return act(lambda i: lifecycle.cancel(i, reason, now, actor))
        return corr.cancel(inc.id, reason, now, actor)
    if standalone:
        # restore, merge and split move customers between outages the correlator holds;
        # an incident it does not hold (voltage, planned, finished) has none to move
        allowed = lifecycle.allowed_transitions(inc)
        raise InvalidTransition(
            f"incident {inc.id} ({inc.kind}) is {inc.status}; {action} is not possible",
            inc.status,
            allowed,
        )
    if action == "restore":
        customers = params.get("customers")
        points = [_point(ctx, p) for p in params.get("points") or ()] or None
        return corr.restore(inc.id, when("at"), actor, customers, points)
    if action == "merge":
        if corr.s.incidents.get(into_id) is None:
            raise InvalidTransition(f"{into_id} is not open", inc.status, ())
        return corr.merge(inc.id, into_id, now, actor)
    return _split(ctx, inc, [str(c) for c in params.get("customers") or ()], now, actor)


def _point(ctx: HandlerContext, point_id: Any) -> Point:
    topo, pid = ctx.cache.topology, str(point_id)
    if pid in topo.devices:
        return ("device", pid)
    if pid in topo.transformers:
        return ("transformer", pid)
    if pid in topo.customers:
        return ("customer", pid)
    raise InvalidRequest(f"unknown point {pid!r}")


def _split(
    ctx: HandlerContext, inc: Incident, customers: list[str], now: datetime, actor: str
) -> list[Event]:
    """Move some customers into a nested incident at their lowest common point."""
    from services.incidents.domain.nesting import _nest

    corr = ctx.cache.corr
    members = [c for c in customers if c in inc.interruptions]
    if not members or len(members) != len(customers):
        raise InvalidRequest("split needs customers of this incident")
    if not lifecycle.is_open(inc):
        raise InvalidTransition("only an open incident can be split", inc.status, ())
    net = corr.net
    if len(members) == 1:
        q: Point = ("customer", members[0])
    elif len({net.cust_tx[c] for c in members}) == 1:
        q = ("transformer", net.cust_tx[members[0]])
    else:
        paths = [net.dev_path[net.tx_device[net.cust_tx[c]]] for c in members]
        common = [d for d in paths[0] if all(d in p for p in paths[1:])]
        q = ("device", common[0])
    from services.incidents.domain.correlation import point_of

    if q == point_of(inc):
        raise InvalidRequest("those customers are the whole outage point; nothing to split")
    corr._touch(inc)
    _nest(corr, inc, q, members, now, "split by operator")
    return corr._flush()


async def _head(session: Any, incident_id: str) -> Any:
    t = orm.incidents
    if not incident_id:
        return None
    return (
        await session.execute(
            sa.select(t.c.id, t.c.feeder_id, t.c.version, t.c.status, t.c.snapshot).where(
                t.c.id == incident_id
            )
        )
    ).one_or_none()
