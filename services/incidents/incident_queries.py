"""Read queries for the API, the call centre lookup and the export (re-exported by
``repository``). Incidents are listed newest first with keyset pagination on
``(detected_at, id)``; cursors are opaque URL-safe strings."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology import orm as topo
from services.incidents import orm
from services.incidents.customer_messages import last_message
from services.incidents.state_store import utc


@dataclass(frozen=True, slots=True)
class IncidentFilters:
    """Every field optional; lists mean "any of"."""

    status: Sequence[str] = ()
    kind: Sequence[str] = ()
    feeder: Sequence[str] = ()
    area: Sequence[str] = ()
    sla: str | None = None  # an SLA status any target of the incident has
    since: datetime | None = None  # detected_at >= since
    until: datetime | None = None  # detected_at < until
    q: str | None = None  # text in the id, the cause or a note


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """The snapshot plus what the detail view shows; ``version`` is the ETag."""

    incident: dict[str, Any]
    version: int
    timeline: list[dict[str, Any]] = field(default_factory=list)
    etr_history: list[dict[str, Any]] = field(default_factory=list)
    sla: dict[str, Any] = field(default_factory=dict)
    impact: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.incident,
            "version": self.version,
            "timeline": self.timeline,
            "etr_history": self.etr_history,
            "sla": self.sla,
            "impact": self.impact,
        }


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The values of a cursor; ValueError when it is not one of ours."""
    try:
        out = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(out, list):
        raise ValueError("invalid cursor")
    return out


def _json_text(column: Any) -> Any:
    """A JSON column read as its text: orjson parses it several times faster than the
    driver's stdlib ``json`` codec, and the list and detail views only re-serialise it."""
    return sa.cast(column, sa.Text)


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _item(r: Any) -> dict[str, Any]:
    item: dict[str, Any] = orjson.loads(r.snapshot)
    item["version"] = r.version
    item["impact"] = _loads(r.impact)
    return item


async def list_incidents(
    session: AsyncSession, filters: IncidentFilters, cursor: str | None, limit: int
) -> Page:
    """Incident snapshots (plus ``version`` and ``impact``), newest first."""
    t = orm.incidents
    stmt = sa.select(
        t.c.id, t.c.detected_at, _json_text(t.c.snapshot).label("snapshot"), t.c.version,
        _json_text(t.c.impact).label("impact"),
    )  # fmt: skip
    for col, wanted in (
        (t.c.status, filters.status), (t.c.kind, filters.kind),
        (t.c.feeder_id, filters.feeder), (t.c.area, filters.area),
    ):  # fmt: skip
        if wanted:
            stmt = stmt.where(col.in_(list(wanted)))
    if filters.sla:
        stmt = stmt.where(sa.cast(t.c.sla, sa.Text).like(f'%"{filters.sla}"%'))
    if filters.since is not None:
        stmt = stmt.where(t.c.detected_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(t.c.detected_at < filters.until)
    if filters.q:
        like = f"%{filters.q}%"
        n = orm.notes
        stmt = stmt.where(
            sa.or_(
                t.c.id.ilike(like),
                t.c.cause.ilike(like),
                sa.exists().where(n.c.incident_id == t.c.id, n.c.text.ilike(like)),
            )
        )
    if cursor:
        at, iid = decode_cursor(cursor)
        at_dt = datetime.fromisoformat(at)
        stmt = stmt.where(
            sa.or_(t.c.detected_at < at_dt, sa.and_(t.c.detected_at == at_dt, t.c.id < iid))
        )
    rows = list(
        await session.execute(stmt.order_by(t.c.detected_at.desc(), t.c.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    nxt = encode_cursor(utc(last.detected_at).isoformat(), last.id) if last else None  # type: ignore[union-attr]
    return Page([_item(r) for r in rows], nxt)


async def get_incident(session: AsyncSession, incident_id: str) -> IncidentDetail | None:
    """One incident with timeline, ETR history, SLA and impact; None when unknown.

    Two round trips: the row (only the columns the view shows, JSON as text), then the
    timeline and the ETR history together."""
    t = orm.incidents
    r = (
        await session.execute(
            sa.select(
                _json_text(t.c.snapshot).label("snapshot"), t.c.customer_minutes, t.c.version,
                _json_text(t.c.sla).label("sla"), _json_text(t.c.impact).label("impact"),
            ).where(t.c.id == incident_id)
        )  # fmt: skip
    ).one_or_none()
    if r is None:
        return None
    incident: dict[str, Any] = orjson.loads(r.snapshot)
    incident["customer_minutes"] = r.customer_minutes
    timeline, etrs = await _histories(session, incident_id)
    return IncidentDetail(
        incident=incident,
        version=r.version,
        timeline=timeline,
        etr_history=etrs,
        sla=_loads(r.sla) or {},
        impact=_loads(r.impact),
    )


async def _histories(
    session: AsyncSession, incident_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The timeline and the ETR history of one incident in one query (a UNION ALL)."""
    tl, eh = orm.timeline, orm.etr_history
    no_etr = sa.cast(sa.null(), eh.c.etr.type).label("etr")
    stmt = sa.union_all(
        sa.select(sa.literal(0).label("src"), tl.c.n, tl.c.at, tl.c.actor,
                  tl.c.type.label("a"), tl.c.detail.label("b"), no_etr)
        .where(tl.c.incident_id == incident_id),
        sa.select(sa.literal(1), eh.c.n, eh.c.at, eh.c.actor, eh.c.reason,
                  sa.null(), eh.c.etr)
        .where(eh.c.incident_id == incident_id),
    ).order_by("src", "n")  # fmt: skip
    timeline: list[dict[str, Any]] = []
    etrs: list[dict[str, Any]] = []
    for r in await session.execute(stmt):
        if r.src == 0:
            timeline.append({"n": r.n, "at": _iso(r.at), "actor": r.actor, "type": r.a,
                             "detail": r.b})  # fmt: skip
        else:
            etrs.append({"at": _iso(r.at), "etr": _iso(r.etr), "actor": r.actor, "reason": r.a})
    return timeline, etrs


async def incident_version(session: AsyncSession, incident_id: str) -> int | None:
    t = orm.incidents
    return (await session.execute(sa.select(t.c.version).where(t.c.id == incident_id))).scalar()


async def incident_timeline(session: AsyncSession, incident_id: str) -> list[dict[str, Any]]:
    t = orm.timeline
    rows = await session.execute(sa.select(t).where(t.c.incident_id == incident_id).order_by(t.c.n))
    return [
        {"n": r.n, "at": _iso(r.at), "actor": r.actor, "type": r.type, "detail": r.detail}
        for r in rows
    ]


async def etr_history(session: AsyncSession, incident_id: str) -> list[dict[str, Any]]:
    t = orm.etr_history
    rows = await session.execute(sa.select(t).where(t.c.incident_id == incident_id).order_by(t.c.n))
    return [
        {"at": _iso(r.at), "etr": _iso(r.etr), "actor": r.actor, "reason": r.reason} for r in rows
    ]


async def affected_customers(
    session: AsyncSession, incident_id: str, cursor: str | None, limit: int
) -> Page:
    """Customers the incident affected, by id, with the interruption that counts for them
    (owned by this incident, or by the nested / surviving incident that took it over)."""
    ic, ti, t = orm.incident_customers, orm.interruptions, orm.incidents
    related = sa.select(t.c.id).where(
        sa.or_(
            t.c.id == incident_id,
            t.c.parent_incident_id == incident_id,
            t.c.id == sa.select(t.c.merged_into).where(t.c.id == incident_id).scalar_subquery(),
        )
    )
    stmt = (
        sa.select(ic.c.customer_id, ti)
        .select_from(
            ic.outerjoin(
                ti, sa.and_(ti.c.customer_id == ic.c.customer_id, ti.c.incident_id.in_(related))
            )
        )
        .where(ic.c.incident_id == incident_id)
    )
    if cursor:
        (after,) = decode_cursor(cursor)
        stmt = stmt.where(ic.c.customer_id > after)
    rows = await session.execute(stmt.order_by(ic.c.customer_id, ti.c.start.desc()))
    items: list[dict[str, Any]] = []
    for r in rows:
        if items and items[-1]["customer_id"] == r[0]:
            continue
        if len(items) == limit:
            return Page(items, encode_cursor(items[-1]["customer_id"]))
        items.append(
            {
                "customer_id": r[0],
                "incident_id": r.incident_id,
                "start": _iso(r.start),
                "start_source": r.start_source,
                "end": _iso(r.end),
                "end_source": r.end_source,
                "unverified": r.unverified,
                "momentary": r.momentary,
            }  # fmt: skip
        )
    return Page(items, None)


async def find_customer(session: AsyncSession, q: str) -> dict[str, Any] | None:
    """A customer by id, meter or phone, with the incident they are out in (or the latest
    one), its ETR and the last message notify sent them; None when nobody matches."""
    c = topo.customers
    row = (
        await session.execute(
            sa.select(c).where(sa.or_(c.c.id == q, c.c.meter == q, c.c.sms == q)).limit(1)
        )
    ).one_or_none()
    if row is None:
        return None
    ti, t = orm.interruptions, orm.incidents
    hit = (
        await session.execute(
            sa.select(t.c.snapshot, t.c.version, ti.c.start, ti.c.end)
            .select_from(ti.join(t, t.c.id == ti.c.incident_id))
            .where(ti.c.customer_id == row.id)
            .order_by(ti.c.end.is_not(None), ti.c.start.desc())
            .limit(1)
        )
    ).one_or_none()
    customer = {k: v for k, v in row._mapping.items()}
    incident = None if hit is None else {**hit.snapshot, "version": hit.version}
    return {
        "customer": customer,
        "out": hit is not None and hit.end is None,
        "incident": incident,
        "etr": None if incident is None else incident.get("etr"),
        "interruption": None if hit is None else {"start": _iso(hit.start), "end": _iso(hit.end)},
        "last_message": await last_message(session, row.id),
    }


async def export_incidents(session: AsyncSession, as_of: datetime) -> AsyncIterator[dict[str, Any]]:
    """Every incident's snapshot plus ``customers_interrupted`` (interruptions it owns),
    ``customer_minutes`` (open ones counted up to ``as_of``) and ``impact``, by detection."""
    t, ti = orm.incidents, orm.interruptions
    after: tuple[datetime, str] | None = None
    while True:
        stmt = sa.select(t).order_by(t.c.detected_at, t.c.id).limit(500)
        if after is not None:
            stmt = stmt.where(sa.tuple_(t.c.detected_at, t.c.id) > sa.tuple_(*after))
        part = list(await session.execute(stmt))
        if not part:
            return
        after = (part[-1].detected_at, part[-1].id)
        minutes: dict[str, tuple[int, float]] = {}
        rows = await session.execute(
            sa.select(ti.c.incident_id, ti.c.start, ti.c.end).where(
                ti.c.incident_id.in_([r.id for r in part])
            )
        )
        for iid, start, end in rows:
            n, m = minutes.get(iid, (0, 0.0))
            stop = utc(end) or as_of
            m += max(0.0, (stop - utc(start)).total_seconds() / 60.0)  # type: ignore[operator]
            minutes[iid] = (n + 1, m)
        for r in part:
            n, m = minutes.get(r.id, (0, 0.0))
            yield {
                **r.snapshot,
                "customers_interrupted": n,
                "customer_minutes": round(m, 3),
                "impact": r.impact,
            }


def _iso(value: datetime | None) -> str | None:
    v = utc(value)
    return None if v is None else v.isoformat()
