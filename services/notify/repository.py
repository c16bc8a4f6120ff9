"""Queries behind the lifecycle handler: the decision state of incident families, new jobs,
processed event ids and escalations. Queries behind the sender are in
``services.notify.queue_repository``.

A family (incidents linked by nesting, merge or moved customers) is loaded on demand, at
most :data:`FAMILY_LIMIT` incidents, into an :class:`IndexedNotifyState`; :class:`Baseline`
remembers what was loaded so :meth:`StateRepository.save` writes only what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import any_, bindparam, insert, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import orm, sqlite_state
from services.notify.domain.job_state import Job, JobStatus
from services.notify.domain.model import IncidentInfo, Interruption, JobSpec
from services.notify.indexed_state import IndexedNotifyState
from services.notify.pg_bulk import COPY_THRESHOLD, copy_rows, upsert_interruptions

FAMILY_LIMIT = 64  # a storm can chain merges; past this, older links are not followed
CHUNK = 5000  # ids per IN list


def to_db(value: datetime | None) -> datetime | None:
    """UTC before storing: SQLite keeps the wall time only, so all rows must share a zone."""
    return None if value is None else value.astimezone(UTC)


def from_db(value: datetime | None) -> datetime | None:
    """Aware UTC when reading (SQLite hands back naive values)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def upsert(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT with ``on_conflict_do_*``."""
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def in_list(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``: one bound array
    instead of a parameter per value, which SQLAlchemy renders anew on every execution
    (a sender round looks up hundreds of customers a few times)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_STATUS = {s.value: s for s in JobStatus}  # cheaper than JobStatus(value) per row


def job_from_row(row: Any, status: JobStatus | None = None) -> Job:
    """A domain :class:`Job` from a ``jobs`` row (needs the columns of :data:`JOB_COLUMNS`);
    ``status``: in that status instead of the row's (a claimed job: ``sending``)."""
    due = from_db(row.due_at)
    assert due is not None
    spec = JobSpec(
        row.incident_id, row.customer_id, row.stage, int(row.revision), due,
        dict(row.payload or {}),
    )  # fmt: skip
    return Job(
        spec=spec,
        status=status if status is not None else _STATUS[row.status],
        due_at=from_db(row.next_attempt_at),
        attempts=int(row.attempts),
        last_error=row.last_error,
        provider_id=row.provider_id,
        channel=row.channel,
    )


# What job_from_row reads: loading only these skips parsing three more timestamps a row.
JOB_COLUMNS = (
    "id", "incident_id", "customer_id", "stage", "revision", "due_at", "payload", "status",
    "next_attempt_at", "attempts", "last_error", "provider_id", "channel",
)  # fmt: skip


def _incident_values(info: IncidentInfo) -> dict[str, Any]:
    return {
        "id": info.id, "kind": info.kind, "status": info.status,
        "detected_at": to_db(info.detected_at), "etr": to_db(info.etr),
        "parent_incident_id": info.parent_incident_id, "merged_into": info.merged_into,
        "area": info.area, "cause": info.cause, "planned_start": to_db(info.planned_start),
        "planned_end": to_db(info.planned_end), "last_seq": info.last_seq,
    }  # fmt: skip


def _interruption_values(i: Interruption) -> dict[str, Any]:
    return {
        "incident_id": i.incident_id, "customer_id": i.customer_id,
        "started_at": to_db(i.started_at), "restored_at": to_db(i.restored_at),
        "restore_verified": i.restore_verified, "moved_from": i.moved_from,
        "moved_to": i.moved_to, "reported": i.reported,
    }  # fmt: skip


# What save compares to find changed interruptions (one C call a row: a kept state has many).
_interruption_sig: Callable[[Interruption], tuple[Any, ...]] = attrgetter(
    "started_at", "restored_at", "restore_verified", "moved_from", "moved_to", "reported"
)


def _incident_sig(info: IncidentInfo) -> tuple[Any, ...]:
    return tuple(_incident_values(info).values())


@dataclass(slots=True)
class Baseline:
    """What was loaded (and last saved), to write back only the differences."""

    loaded: set[str] = field(default_factory=set)
    incidents: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    interruptions: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    planned: set[tuple[str, str]] = field(default_factory=set)


class StateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        dialect = session.get_bind().dialect.name
        self._postgres = dialect == "postgresql"
        # SQLite: the bulk writes as plain SQL (see services.notify.sqlite_state)
        self._sqlite = dialect == "sqlite"

    # -- processed events ----------------------------------------------------------------
    async def processed(self, event_ids: Sequence[str]) -> set[str]:
        """The ids among ``event_ids`` already applied."""
        if self._sqlite:
            return await sqlite_state.processed(self.session, event_ids)
        t = orm.processed_events
        found: set[str] = set()
        for part in chunks(list(event_ids)):
            rows = await self.session.execute(select(t.c.event_id).where(t.c.event_id.in_(part)))
            found.update(r.event_id for r in rows)
        return found

    async def mark_processed(self, event_ids: Sequence[str], at: datetime) -> None:
        if event_ids and self._sqlite:
            await sqlite_state.mark_processed(self.session, event_ids, at)
        elif event_ids:
            rows = [{"event_id": e, "processed_at": to_db(at)} for e in event_ids]
            await self.session.execute(insert(orm.processed_events), rows)

    # -- the decision state --------------------------------------------------------------
    async def load_family(
        self,
        state: IndexedNotifyState,
        base: Baseline,
        seeds: Iterable[str],
        customers: Sequence[str] | None = None,
        *,
        budget: int = FAMILY_LIMIT,
        job_stages: Sequence[str] | None = None,
    ) -> bool:
        """Load into ``state`` the incidents linked to ``seeds`` that are not loaded yet,
        at most ``budget`` incidents, breadth first: a few set-based queries per link level
        whatever the number of seeds.

        With ``customers`` (the sender re-checking a round of due jobs) only those
        customers' interruptions and jobs are loaded, and only their moves link incidents.
        Jobs are recorded in creation (``id``) order, so "the latest job" means the same
        however the family was reached. With ``job_stages`` only the jobs of those stages
        that are not cancelled are loaded (the sender's re-check asks about no others:
        ``family_jobs`` skips cancelled jobs), which spares most job rows of a round.
        Returns False when the budget stopped the walk with linked incidents left unloaded.
        """
        frontier = {s for s in seeds if s} - base.loaded
        jobs: list[Any] = []
        while frontier and budget > 0:
            ids = sorted(frontier)[:budget]
            budget -= len(ids)
            base.loaded.update(ids)
            links = await self._load_incidents(state, base, ids)
            links |= await self._load_interruptions(state, base, ids, customers)
            if customers is None:
                await self._load_planned(state, base, ids)
            jobs.extend(await self._load_jobs(ids, customers, job_stages))
            frontier = links - base.loaded
        jobs.sort(key=lambda r: r.id)
        for r in jobs:
            state.put_job(job_from_row(r))
        return not frontier

    async def _load_incidents(
        self, state: IndexedNotifyState, base: Baseline, ids: Sequence[str]
    ) -> set[str]:
        t = orm.incidents
        links: set[str] = set()
        rows = await self.session.execute(
            select(t).where(
                or_(t.c.id.in_(ids), t.c.parent_incident_id.in_(ids), t.c.merged_into.in_(ids))
            )
        )
        for r in rows:
            links.update(x for x in (r.id, r.parent_incident_id, r.merged_into) if x)
            if r.id not in ids:
                continue
            info = IncidentInfo(
                id=r.id, kind=r.kind, status=r.status, detected_at=from_db(r.detected_at),
                etr=from_db(r.etr), parent_incident_id=r.parent_incident_id,
                merged_into=r.merged_into, area=r.area, cause=r.cause,
                planned_start=from_db(r.planned_start), planned_end=from_db(r.planned_end),
                last_seq=int(r.last_seq),
            )  # fmt: skip
            state.incidents[info.id] = info
            base.incidents[info.id] = _incident_sig(info)
        return links

    async def _load_interruptions(
        self,
        state: IndexedNotifyState,
        base: Baseline,
        ids: Sequence[str],
        customers: Sequence[str] | None,
    ) -> set[str]:
        t = orm.interruptions
        links: set[str] = set()
        query = select(t).where(t.c.incident_id.in_(ids))
        if customers is not None:
            query = query.where(in_list(self.session, t.c.customer_id, customers))
        rows = await self.session.execute(query)
        for r in rows:
            started = from_db(r.started_at)
            assert started is not None
            i = Interruption(
                r.incident_id, r.customer_id, started, from_db(r.restored_at),
                r.restore_verified, r.moved_from, r.moved_to, r.reported,
            )  # fmt: skip
            state.put_interruption(i)
            base.interruptions[(i.incident_id, i.customer_id)] = _interruption_sig(i)
            links.update(x for x in (i.moved_from, i.moved_to) if x)
        return links

    async def _load_planned(
        self, state: IndexedNotifyState, base: Baseline, ids: Sequence[str]
    ) -> None:
        t = orm.planned_customers
        rows = await self.session.execute(select(t).where(t.c.incident_id.in_(ids)))
        for r in rows:
            state.planned_customers.setdefault(r.incident_id, set()).add(r.customer_id)
            base.planned.add((r.incident_id, r.customer_id))

    async def _load_jobs(
        self, ids: Sequence[str], customers: Sequence[str] | None, stages: Sequence[str] | None
    ) -> list[Any]:
        t = orm.jobs
        query = select(*(t.c[c] for c in JOB_COLUMNS)).where(t.c.incident_id.in_(ids))
        if customers is not None:
            query = query.where(in_list(self.session, t.c.customer_id, customers))
        if stages is not None:
            query = query.where(t.c.stage.in_(list(stages)),
                                t.c.status != JobStatus.CANCELLED.value)  # fmt: skip
        return list((await self.session.execute(query)).all())

    async def save(
        self,
        state: IndexedNotifyState,
        base: Baseline,
        touched: Collection[str] | None = None,
    ) -> None:
        """Write the incidents, interruptions and planned customers that changed.
        ``touched``: only these incidents' interruptions can have changed since the last
        save or load (``decisions.touched_incidents`` of the events decided since); a kept
        state holds every interruption, and a batch touches few."""
        changed = [
            _incident_values(info)
            for info in state.incidents.values()
            if base.incidents.get(info.id) != _incident_sig(info)
        ]
        if changed and self._sqlite:
            await sqlite_state.upsert_incidents(self.session, changed)
        elif changed:
            stmt = upsert(self.session, orm.incidents)
            cols = {c: stmt.excluded[c] for c in changed[0] if c != "id"}
            await self.session.execute(
                stmt.on_conflict_do_update(index_elements=["id"], set_=cols), changed
            )
        new: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        saved = base.interruptions
        candidates: Iterable[Interruption] = (
            state.interruptions.values() if touched is None
            else state.interruptions_of(sorted(touched))
        )  # fmt: skip
        for i in candidates:
            key = (i.incident_id, i.customer_id)
            sig = _interruption_sig(i)
            before = saved.get(key)
            if before == sig:
                continue
            (new if before is None else updated).append(_interruption_values(i))
            saved[key] = sig
        if self._sqlite:
            await sqlite_state.write_interruptions(self.session, new, updated)
        elif len(new) >= COPY_THRESHOLD:
            names = list(new[0])
            await copy_rows(self.session, orm.SCHEMA, "interruptions", names,
                            [tuple(r[c] for c in names) for r in new])  # fmt: skip
            await upsert_interruptions(self.session, updated)
        else:
            await upsert_interruptions(self.session, new + updated)
        planned = [
            {"incident_id": inc, "customer_id": c}
            for inc, customers in state.planned_customers.items()
            for c in customers
            if (inc, c) not in base.planned
        ]
        if planned:
            await self.session.execute(insert(orm.planned_customers), planned)
            base.planned.update((p["incident_id"], p["customer_id"]) for p in planned)
        for info in state.incidents.values():
            base.incidents[info.id] = _incident_sig(info)

    async def insert_jobs(self, specs: Sequence[JobSpec], now: datetime) -> None:
        """Insert new jobs; one whose idempotency key exists is skipped (ON CONFLICT)."""
        if not specs:
            return
        if self._sqlite:
            await sqlite_state.insert_jobs(self.session, specs, now)
            return
        created = to_db(now)
        rows = [
            {
                "incident_id": s.incident_id, "customer_id": s.customer_id, "stage": s.stage,
                "revision": s.revision, "status": JobStatus.PENDING.value,
                "due_at": to_db(s.due_at), "next_attempt_at": to_db(s.due_at), "attempts": 0,
                "payload": dict(s.payload), "created_at": created,
            }
            for s in specs
        ]  # fmt: skip
        key = ["incident_id", "customer_id", "stage", "revision"]
        if len(rows) >= COPY_THRESHOLD and self._postgres:
            cols = list(rows[0])
            records = [
                tuple(orjson.dumps(r[c]).decode() if c == "payload" else r[c] for c in cols)
                for r in rows
            ]
            await copy_rows(self.session, orm.SCHEMA, "jobs", cols, records, conflict=key)
            return
        stmt = upsert(self.session, orm.jobs).on_conflict_do_nothing(index_elements=key)
        await self.session.execute(stmt, rows)

    async def add_escalations(self, specs: Sequence[JobSpec]) -> None:
        """One escalation per critical customer and incident, due with the outage notice."""
        if not specs:
            return
        rows = [
            {"incident_id": s.incident_id, "customer_id": s.customer_id, "at": to_db(s.due_at),
             "status": "pending", "sent": False}
            for s in specs
        ]  # fmt: skip
        stmt = upsert(self.session, orm.escalations).on_conflict_do_nothing(
            index_elements=["incident_id", "customer_id"]
        )
        await self.session.execute(stmt, rows)
