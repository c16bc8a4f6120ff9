"""The lifecycle handler's bulk writes on SQLite as plain SQL (the demo's database): new
jobs, incidents, interruptions and processed event ids, tens of thousands of rows over a
demo, each of which costs SQLAlchemy's ``executemany`` more Python than SQLite takes to
store it (see :mod:`services.notify.sqlite_queue`, whose driver calls and value conversions
these share).
"""

# The SQL here is built from constants and placeholder counts only, never from values.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.domain.model import JobSpec
from services.notify.sqlite_queue import UtcTexts, marks, present, run_many, utc_dt

INTERRUPTION_COLUMNS = (
    "incident_id", "customer_id", "started_at", "restored_at", "restore_verified",
    "moved_from", "moved_to", "reported",
)  # fmt: skip
_INTERRUPTION_VALUES = (
    f"INSERT INTO notify.interruptions ({', '.join(INTERRUPTION_COLUMNS)}) "
    f"VALUES ({marks(len(INTERRUPTION_COLUMNS))})"
)
INSERT_INTERRUPTIONS = _INTERRUPTION_VALUES
UPSERT_INTERRUPTIONS = (
    f"{_INTERRUPTION_VALUES} ON CONFLICT (incident_id, customer_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in INTERRUPTION_COLUMNS[2:])
)
INCIDENT_COLUMNS = (
    "id", "kind", "status", "detected_at", "etr", "parent_incident_id", "merged_into", "area",
    "cause", "planned_start", "planned_end", "last_seq",
)  # fmt: skip
_INCIDENT_TIMES = frozenset({"detected_at", "etr", "planned_start", "planned_end"})
UPSERT_INCIDENTS = (
    f"INSERT INTO notify.incidents ({', '.join(INCIDENT_COLUMNS)}) "
    f"VALUES ({marks(len(INCIDENT_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in INCIDENT_COLUMNS[1:])
)
INSERT_JOBS = (
    "INSERT INTO notify.jobs (incident_id, customer_id, stage, revision, status, due_at, "
    "next_attempt_at, attempts, payload, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, 0, "
    "?, ?) ON CONFLICT (incident_id, customer_id, stage, revision) DO NOTHING"
)


def interruption_row(values: dict[str, Any]) -> tuple[Any, ...]:
    """A row of :data:`INSERT_INTERRUPTIONS` from ``repository._interruption_values`` (times
    already in UTC)."""
    return (
        values["incident_id"], values["customer_id"], utc_dt(values["started_at"]),
        utc_dt(values["restored_at"]), values["restore_verified"], values["moved_from"],
        values["moved_to"], values["reported"],
    )  # fmt: skip


async def upsert_incidents(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update incidents (rows of ``repository._incident_values``)."""
    await run_many(
        session,
        UPSERT_INCIDENTS,
        [tuple(utc_dt(r[c]) if c in _INCIDENT_TIMES else r[c] for c in INCIDENT_COLUMNS)
         for r in rows],
    )  # fmt: skip


async def write_interruptions(
    session: AsyncSession, new: Sequence[dict[str, Any]], updated: Sequence[dict[str, Any]]
) -> None:
    """Insert ``new`` and upsert ``updated`` (rows of ``repository._interruption_values``)."""
    if new:
        await run_many(session, INSERT_INTERRUPTIONS, [interruption_row(v) for v in new])
    if updated:
        await run_many(session, UPSERT_INTERRUPTIONS, [interruption_row(v) for v in updated])


async def insert_jobs(session: AsyncSession, specs: Sequence[JobSpec], now: datetime) -> None:
    """``StateRepository.insert_jobs`` on SQLite (the payload JSON as SQLAlchemy's
    ``JSON`` type writes it: ``json.dumps``)."""
    created = utc_dt(now)
    texts = UtcTexts()
    rows = []
    for s in specs:
        due = texts[s.due_at]
        rows.append((s.incident_id, s.customer_id, s.stage, s.revision, due, due,
                     json.dumps(dict(s.payload)), created))  # fmt: skip
    await run_many(session, INSERT_JOBS, rows)


async def processed(session: AsyncSession, event_ids: Sequence[str]) -> set[str]:
    """``StateRepository.processed`` on SQLite."""
    return await present(session, "notify.processed_events", "event_id", event_ids)


async def mark_processed(session: AsyncSession, event_ids: Sequence[str], at: datetime) -> None:
    """``StateRepository.mark_processed`` on SQLite."""
    when = utc_dt(at)
    await run_many(
        session,
        "INSERT INTO notify.processed_events (event_id, processed_at) VALUES (?, ?)",
        [(e, when) for e in event_ids],
    )
