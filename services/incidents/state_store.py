"""Rows ↔ the correlator's plain state: load a feeder, save what changed, lock and bump.

Every query on the correlator's tables lives here (re-exported by ``repository``). Saves are
incremental: the caller keeps, per incident, an :class:`IncidentMeta` describing what the
database already holds (version, timeline and ETR counts, interruption fingerprints), and
per feeder a :class:`FeederRows` (timers, holders, issued ids), so a batch writes only the
rows that changed even when a storm incident holds thousands of customers.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology.model import Topology
from services.incidents import orm
from services.incidents.bulk_sql import among, chunks, insert_rows, is_postgres
from services.incidents.domain.meter_state import CorrelatorState, CustomerState, DeviceState
from services.incidents.domain.model import Incident, Interruption
from services.incidents.interruption_groups import stamp_groups, upsert_interruptions

TERMINAL_STATUSES = ("closed", "momentary", "merged", "cancelled", "completed")
TIMER_KINDS = ("dwell", "confirm", "nested")

Fingerprint = tuple[Any, ...]


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    out = utc(value)
    assert out is not None
    return out


def upsert(session: AsyncSession, table: sa.Table) -> Any:
    """A dialect ``INSERT`` that supports ``on_conflict_do_update``/``do_nothing``."""
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


@dataclass(slots=True)
class IncidentMeta:
    """What the database holds for one incident (for incremental saves)."""

    version: int = 0
    timeline_n: int = 0
    etr_n: int = 0
    interruptions: dict[str, Fingerprint] = field(default_factory=dict)
    affected: set[str] = field(default_factory=set)
    snapshot: dict[str, Any] | None = None


@dataclass(slots=True)
class FeederRows:
    """What the database holds of one feeder's timers, holders and issued ids."""

    timers: dict[tuple[str, str], datetime] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)


@dataclass(slots=True)
class FeederDelta:
    """How one feeder's timers, holders and issued ids differ from its :class:`FeederRows`."""

    timers_set: dict[tuple[str, str], datetime] = field(default_factory=dict)
    timers_gone: list[tuple[str, str]] = field(default_factory=list)
    holders_set: dict[str, str] = field(default_factory=dict)
    holders_gone: list[str] = field(default_factory=list)
    issued_new: set[str] = field(default_factory=set)


@dataclass(slots=True)
class LoadedFeeder:
    state: CorrelatorState
    metas: dict[str, IncidentMeta]
    rows: FeederRows


@dataclass(frozen=True, slots=True)
class FeederVersion:
    version: int
    writer: str
    next_wake: datetime | None


# --- feeder lock ------------------------------------------------------------------------
async def lock_feeder(session: AsyncSession, feeder_id: str) -> FeederVersion:
    """Lock a feeder's version row for this transaction (created at version 0 if missing).

    ``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
    writers, so a plain read suffices there. One statement once the row exists (every
    unit of work locks its feeders, so this is on the hot path).
    """
    t = orm.feeder_versions
    stmt = sa.select(t.c.version, t.c.writer, t.c.next_wake).where(t.c.feeder_id == feeder_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        # insert-or-ignore: a concurrent first writer may have created it meanwhile
        await session.execute(
            upsert(session, t)
            .values(feeder_id=feeder_id, version=0, writer="", next_wake=None)
            .on_conflict_do_nothing(index_elements=["feeder_id"])
        )
        row = (await session.execute(stmt)).one()
    return FeederVersion(row.version, row.writer, utc(row.next_wake))


async def bump_feeder(
    session: AsyncSession, feeder_id: str, next_wake: datetime | None, partition: int | None = None
) -> FeederVersion:
    """Advance a locked feeder's version with a fresh writer token; store its next wake and,
    when known, the signals partition it arrives on."""
    t = orm.feeder_versions
    writer = uuid.uuid4().hex
    values: dict[str, Any] = {"version": t.c.version + 1, "writer": writer, "next_wake": next_wake}
    if partition is not None:
        values["partition"] = partition
    row = (
        await session.execute(
            sa.update(t).where(t.c.feeder_id == feeder_id).values(values).returning(t.c.version)
        )
    ).one()
    return FeederVersion(row.version, writer, next_wake)


def _on_partitions(partitions: Collection[int] | None) -> sa.ColumnElement[bool]:
    """Feeders on ``partitions`` or on no known partition (None: every feeder)."""
    t = orm.feeder_versions
    if partitions is None:
        return sa.true()
    return sa.or_(t.c.partition.is_(None), t.c.partition.in_(sorted(partitions)))


async def due_feeders(
    session: AsyncSession, now: datetime, partitions: Collection[int] | None = None
) -> list[str]:
    """Feeders whose stored next wake-up is at or before ``now`` (on ``partitions``)."""
    t = orm.feeder_versions
    rows = await session.execute(
        sa.select(t.c.feeder_id)
        .where(t.c.next_wake <= now, _on_partitions(partitions))
        .order_by(t.c.feeder_id)
    )
    return list(rows.scalars())


async def earliest_wake(
    session: AsyncSession, partitions: Collection[int] | None = None
) -> datetime | None:
    """The earliest stored wake-up of the feeders (on ``partitions``)."""
    t = orm.feeder_versions
    stmt = sa.select(sa.func.min(t.c.next_wake)).where(_on_partitions(partitions))
    return utc((await session.execute(stmt)).scalar())


# --- processed signals ------------------------------------------------------------------
async def processed_ids(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    """The signal ids among ``ids`` already applied."""
    t = orm.processed_signals
    found: set[str] = set()
    for among_ids in among(session, t.c.signal_id, sorted(set(ids))):
        found.update((await session.execute(sa.select(t.c.signal_id).where(among_ids))).scalars())
    return found


async def mark_processed(
    session: AsyncSession, signals: Iterable[tuple[str, str]], at: datetime
) -> None:
    """Record ``(signal_id, feeder_id)`` pairs as applied (insert-or-ignore)."""
    pairs = [(s, f, at) for s, f in signals]
    await insert_rows(session, orm.processed_signals, ("signal_id", "feeder_id", "applied_at"),
                      pairs, conflict=("signal_id",))  # fmt: skip


# --- load -------------------------------------------------------------------------------
def _customer_state(r: Any) -> CustomerState:
    return CustomerState(
        status=r.status, since=utc(r.since), at=utc(r.at), source=r.source,
        still_out=r.still_out, presumed=r.presumed,
        last_start=utc(r.last_start), last_end=utc(r.last_end),
    )  # fmt: skip


def incident_from_row(r: Any) -> Incident:
    """An Incident (no interruptions yet) from an ``incidents`` row."""
    return Incident(
        id=r.id, kind=r.kind, status=r.status, feeder_id=r.feeder_id, area=r.area,
        detected_at=_utc(r.detected_at), device_id=r.device_id,
        transformer_id=r.transformer_id, customer_id=r.customer_id,
        confirmed_at=utc(r.confirmed_at), acknowledged_at=utc(r.acknowledged_at),
        etr=utc(r.etr), restored_at=utc(r.restored_at), closed_at=utc(r.closed_at),
        cause=r.cause, parent_incident_id=r.parent_incident_id, merged_into=r.merged_into,
        crew_id=r.crew_id, arrived_at=utc(r.arrived_at), etr_slips=r.etr_slips,
        sla=dict(r.sla or {}), seq=r.seq,
    )  # fmt: skip


async def _attach(session: AsyncSession, incs: Mapping[str, Incident]) -> dict[str, IncidentMeta]:
    """Fill interruptions and affected customers; the metas describing what is stored."""
    metas = {i: IncidentMeta() for i in incs}
    ids = sorted(incs)
    ti, ic, tl, eh = orm.interruptions, orm.incident_customers, orm.timeline, orm.etr_history
    for part in chunks(ids):
        for r in await session.execute(sa.select(ti).where(ti.c.incident_id.in_(part))):
            inc = incs[r.incident_id]
            intr = Interruption(
                r.customer_id, _utc(r.start), r.start_source, utc(r.end), r.end_source,
                r.unverified,
            )  # fmt: skip
            inc.add_interruption(intr)
            metas[inc.id].interruptions[r.customer_id] = _fingerprint(intr, inc)
        for r in await session.execute(sa.select(ic).where(ic.c.incident_id.in_(part))):
            incs[r.incident_id].customers_affected.add(r.customer_id)
            metas[r.incident_id].affected.add(r.customer_id)
        for table, attr in ((tl, "timeline_n"), (eh, "etr_n")):
            counts = await session.execute(
                sa.select(table.c.incident_id, sa.func.max(table.c.n))
                .where(table.c.incident_id.in_(part))
                .group_by(table.c.incident_id)
            )
            for iid, n in counts:
                setattr(metas[iid], attr, n or 0)
    return metas


async def load_incidents(
    session: AsyncSession, where: Any
) -> tuple[dict[str, Incident], dict[str, IncidentMeta]]:
    """Incidents matching ``where`` with their interruptions, and their metas."""
    t = orm.incidents
    incs: dict[str, Incident] = {}
    versions: dict[str, tuple[int, Any]] = {}
    for r in await session.execute(sa.select(t).where(where)):
        incs[r.id] = incident_from_row(r)
        versions[r.id] = (r.version, r.snapshot)
    metas = await _attach(session, incs)
    for iid, (version, snapshot) in versions.items():
        metas[iid].version, metas[iid].snapshot = version, snapshot
    return incs, metas


async def load_feeder(session: AsyncSession, feeder_id: str) -> LoadedFeeder:
    """Everything the correlator holds for one feeder, as stored."""
    st = CorrelatorState()
    rows = FeederRows()
    cs, ds, ho, tm, ii = (
        orm.customer_state, orm.device_state, orm.holders, orm.correlator_timers, orm.issued_ids,
    )  # fmt: skip
    for r in await session.execute(sa.select(cs).where(cs.c.feeder_id == feeder_id)):
        st.customers[r.customer_id] = _customer_state(r)
    for r in await session.execute(sa.select(ds).where(ds.c.feeder_id == feeder_id)):
        st.devices[r.device_id] = DeviceState(r.open, _utc(r.at), r.lockout)
    nested: set[str] = set()
    for r in await session.execute(sa.select(tm).where(tm.c.feeder_id == feeder_id)):
        due = _utc(r.due_at)
        rows.timers[(r.kind, r.subject_id)] = due
        {"dwell": st.dwell_due, "confirm": st.confirm_due, "nested": st.nested_due}[r.kind][
            r.subject_id
        ] = due
        if r.kind == "nested":
            nested.add(r.subject_id)
    t = orm.incidents
    held = sa.and_(
        t.c.feeder_id == feeder_id,
        sa.or_(t.c.status.not_in(TERMINAL_STATUSES), t.c.id.in_(sorted(nested))),
        t.c.kind == "outage",
    )
    st.incidents, metas = await load_incidents(session, held)
    for r in await session.execute(sa.select(ho).where(ho.c.feeder_id == feeder_id)):
        if r.incident_id in st.incidents:
            st.holder[r.customer_id] = r.incident_id
        rows.holders[r.customer_id] = r.incident_id
    for r in await session.execute(sa.select(ii.c.id).where(ii.c.feeder_id == feeder_id)):
        st.issued_ids.add(r.id)
        rows.issued.add(r.id)
    return LoadedFeeder(st, metas, rows)


# --- save -------------------------------------------------------------------------------
def _fingerprint(i: Interruption, inc: Incident) -> Fingerprint:
    return (
        i.start, i.start_source, i.end, i.end_source, i.unverified,
        inc.status == "momentary", inc.kind == "planned",
    )  # fmt: skip


CUSTOMER_COLUMNS = ("customer_id", "feeder_id", "status", "since", "at", "source", "still_out",
                    "presumed", "last_start", "last_end")  # fmt: skip
INTERRUPTION_COLUMNS = ("incident_id", "customer_id", "start", "start_source", "end",
                        "end_source", "unverified", "momentary", "planned")  # fmt: skip


async def save_customers(
    session: AsyncSession, rows: Sequence[tuple[str, str, CustomerState]]
) -> None:
    """Upsert customer states ``(customer_id, feeder_id, state)``."""
    if not rows:
        return
    await insert_rows(
        session, orm.customer_state, CUSTOMER_COLUMNS,
        [(c, f, s.status, s.since, s.at, s.source, s.still_out, s.presumed, s.last_start,
          s.last_end) for c, f, s in rows],
        conflict=("customer_id",), update=CUSTOMER_COLUMNS[1:],
    )  # fmt: skip


async def save_devices(session: AsyncSession, rows: Sequence[tuple[str, str, DeviceState]]) -> None:
    """Upsert device states ``(device_id, feeder_id, state)``."""
    if not rows:
        return
    columns = ("device_id", "feeder_id", "open", "at", "lockout")
    await insert_rows(session, orm.device_state, columns,
                      [(d, f, s.open, s.at, s.lockout) for d, f, s in rows],
                      conflict=("device_id",), update=columns[1:])  # fmt: skip


def incident_values(inc: Incident, version: int, now: datetime) -> dict[str, Any]:
    """The ``incidents`` row of an incident (without ``impact``, owned by the impact hook)."""
    snapshot = inc.snapshot()
    return {
        "id": inc.id, "kind": inc.kind, "status": inc.status, "feeder_id": inc.feeder_id,
        "device_id": inc.device_id, "transformer_id": inc.transformer_id,
        "customer_id": inc.customer_id, "area": inc.area, "detected_at": inc.detected_at,
        "confirmed_at": inc.confirmed_at, "acknowledged_at": inc.acknowledged_at,
        "etr": inc.etr, "restored_at": inc.restored_at, "closed_at": inc.closed_at,
        "cause": inc.cause, "parent_incident_id": inc.parent_incident_id,
        "merged_into": inc.merged_into, "crew_id": inc.crew_id, "arrived_at": inc.arrived_at,
        "customers_affected": len(inc.customers_affected), "customers_out": inc.out_count,
        "customer_minutes": inc.customer_minutes(now), "etr_slips": inc.etr_slips,
        "seq": inc.seq, "version": version, "sla": dict(inc.sla), "snapshot": snapshot,
        "updated_at": now,
    }  # fmt: skip


INCIDENT_COLUMNS = tuple(str(c.name) for c in orm.incidents.columns if c.name != "impact")
TIMELINE_COLUMNS = ("incident_id", "n", "at", "actor", "type", "detail")
ETR_COLUMNS = ("incident_id", "n", "at", "etr", "actor", "reason")


async def save_incidents(
    session: AsyncSession,
    pairs: Sequence[tuple[Incident, IncidentMeta]],
    now: datetime,
    topology: Topology | None = None,
) -> None:
    """Write changed incidents ``(incident, meta)``: their rows (versions bumped),
    interruption and membership changes, and the timeline and ETR entries appended since the
    last save — each kind for all the incidents in one statement.

    Timeline and ETR history are append-only in the database; once written they are dropped
    from memory (the API reads them from the database), which keeps long incidents small.
    """
    if not pairs:
        return
    rows = []
    for inc, meta in pairs:
        meta.version += 1
        values = incident_values(inc, meta.version, now)
        meta.snapshot = values["snapshot"]
        rows.append(values)
    await insert_rows(session, orm.incidents, INCIDENT_COLUMNS, rows, conflict=("id",),
                      update=INCIDENT_COLUMNS[1:])  # fmt: skip
    await _save_interruptions(session, pairs, topology)
    affected = []
    for inc, meta in pairs:
        new_affected = sorted(inc.customers_affected - meta.affected)
        affected += [(inc.id, c) for c in new_affected]
        meta.affected.update(new_affected)
    await insert_rows(session, orm.incident_customers, ("incident_id", "customer_id"), affected,
                      conflict=())  # fmt: skip
    timeline: list[tuple[Any, ...]] = []
    etrs: list[tuple[Any, ...]] = []
    for inc, meta in pairs:
        timeline += [(inc.id, meta.timeline_n + k, e.at, e.actor, e.type, e.detail)
                     for k, e in enumerate(inc.timeline, start=1)]  # fmt: skip
        meta.timeline_n += len(inc.timeline)
        inc.timeline.clear()
        etrs += [(inc.id, meta.etr_n + k, e.at, e.etr, e.actor, e.reason)
                 for k, e in enumerate(inc.etr_history, start=1)]  # fmt: skip
        meta.etr_n += len(inc.etr_history)
        inc.etr_history.clear()
    await insert_rows(session, orm.timeline, TIMELINE_COLUMNS, timeline)
    await insert_rows(session, orm.etr_history, ETR_COLUMNS, etrs)


async def delete_interruptions(session: AsyncSession, moved: Sequence[tuple[str, str]]) -> None:
    """Delete ``(incident_id, customer_id)`` rows (interruptions given to another incident).

    Run for every incident of a save before any upsert, so a row moving from one incident
    to another is never briefly owned by both.
    """
    t = orm.interruptions
    for iid in sorted({i for i, _ in moved}):
        customers = sorted(c for i, c in moved if i == iid)
        for part in chunks(customers):
            await session.execute(
                sa.delete(t).where(t.c.incident_id == iid, t.c.customer_id.in_(part))
            )


def gone_interruptions(inc: Incident, meta: IncidentMeta) -> list[tuple[str, str]]:
    """Stored interruptions the incident no longer owns."""
    return [(inc.id, c) for c in meta.interruptions if c not in inc.interruptions]


async def _save_interruptions(
    session: AsyncSession,
    pairs: Sequence[tuple[Incident, IncidentMeta]],
    topology: Topology | None,
) -> None:
    new_rows: list[tuple[Any, ...]] = []  # rows new to their incident: stamped with groups
    changed: list[tuple[Any, ...]] = []
    ordered: list[tuple[Any, ...]] = []  # both, in the incidents' order (SQLite's executemany)
    for inc, meta in pairs:
        saved = meta.interruptions
        for c in [c for c in saved if c not in inc.interruptions]:
            del saved[c]  # deleted by delete_interruptions beforehand
        momentary, planned = inc.status == "momentary", inc.kind == "planned"
        for c, intr in inc.interruptions.items():
            fp = (intr.start, intr.start_source, intr.end, intr.end_source, intr.unverified,
                  momentary, planned)  # _fingerprint, inlined: thousands of rows per batch
            old = saved.get(c)
            if old != fp:
                saved[c] = fp
                row = (inc.id, c, *fp)
                (changed if old is not None else new_rows).append(row)
                ordered.append(row)
    if is_postgres(session):
        for rows, stamp in ((changed, False), (new_rows, True)):
            if rows:
                await upsert_interruptions(session, INTERRUPTION_COLUMNS, rows,
                                           INTERRUPTION_COLUMNS[2:], stamp=stamp,
                                           topology=topology)  # fmt: skip
        return
    await insert_rows(session, orm.interruptions, INTERRUPTION_COLUMNS, ordered,
                      conflict=("incident_id", "customer_id"),
                      update=INTERRUPTION_COLUMNS[2:])  # fmt: skip
    # Report groups (feeder, substation, area) from the topology, once per new row.
    for iid in sorted({r[0] for r in new_rows}):
        await stamp_groups(session, iid, [r[1] for r in new_rows if r[0] == iid])


async def save_feeder_delta(
    session: AsyncSession, feeder_id: str, delta: FeederDelta, saved: FeederRows
) -> bool:
    """Write a feeder's timer, holder and issued-id changes and apply them to ``saved``
    (what the database holds); True if any changed."""
    tm, ho, ii = orm.correlator_timers, orm.holders, orm.issued_ids
    gone_t = delta.timers_gone
    for kind in TIMER_KINDS:
        subjects = sorted(s for k, s in gone_t if k == kind)
        for part in chunks(subjects):
            await session.execute(sa.delete(tm).where(tm.c.kind == kind, tm.c.subject_id.in_(part)))
    new_t = [(k, s, feeder_id, d) for (k, s), d in sorted(delta.timers_set.items())]
    await insert_rows(session, tm, ("kind", "subject_id", "feeder_id", "due_at"), new_t,
                      conflict=("kind", "subject_id"), update=("due_at", "feeder_id"))  # fmt: skip
    gone_h = sorted(delta.holders_gone)
    for part in chunks(gone_h):
        await session.execute(sa.delete(ho).where(ho.c.customer_id.in_(part)))
    new_h = [(c, i, feeder_id) for c, i in sorted(delta.holders_set.items())]
    await insert_rows(session, ho, ("customer_id", "incident_id", "feeder_id"), new_h,
                      conflict=("customer_id",), update=("incident_id",))  # fmt: skip
    new_i = sorted(delta.issued_new)
    await insert_rows(session, ii, ("id", "feeder_id"), [(i, feeder_id) for i in new_i],
                      conflict=())  # fmt: skip
    for key in gone_t:
        saved.timers.pop(key, None)
    saved.timers.update(delta.timers_set)
    for c in gone_h:
        saved.holders.pop(c, None)
    saved.holders.update(delta.holders_set)
    saved.issued.update(new_i)
    return bool(gone_t or new_t or gone_h or new_h or new_i)
