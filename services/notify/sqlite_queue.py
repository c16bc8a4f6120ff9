"""The sender's statements on SQLite as plain SQL (the demo's database).

Through SQLAlchemy Core each statement is rebuilt, its cache key computed, its ``IN`` list
expanded and every row of an ``executemany`` run through the bind processors: ten to
twenty microseconds of Python per row, several times what SQLite takes to run it; even
``exec_driver_sql`` costs about a hundred microseconds a statement. Here the SQL is fixed
text run on a cursor of the session's own driver connection, inside its transaction
(:func:`fetch`, :func:`run`, :func:`run_many`; driver errors are raised as SQLAlchemy's, as
the callers' retry loops expect), except for outbox inserts, which go through
``exec_driver_sql`` (:func:`execute`) so the engine's events see them (the demo watches
for them). Values are converted by :func:`dt` exactly as SQLAlchemy's SQLite ``DateTime``
stores them, so rows read the same either way (the PostgreSQL counterpart is
:mod:`services.notify.pg_outcomes`).

Claimable jobs are read through the partial index ``ix_jobs_due``, in its own order
(``next_attempt_at``, then ``id``): a claim reads the rows it takes and one more, and the
earliest due job is the index's first entry. SQLite uses a partial index only when the
query repeats its condition literally, not with bound parameters.
"""

# The SQL here is built from constants and placeholder counts only, never from values.
# ruff: noqa: S608

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.orm import CLAIMABLE

JOBS_DUE = f"notify.jobs INDEXED BY ix_jobs_due WHERE {CLAIMABLE.text}"
MAX_VARS = 30_000  # bound values per statement (SQLite allows 32,766)


def dt(value: datetime | None) -> str | None:
    """``value`` as SQLAlchemy's SQLite ``DateTime`` stores it: its wall time (the zone is
    dropped, not converted), always with microseconds."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def utc_dt(value: datetime | None) -> str | None:
    """:func:`dt` of ``value`` in UTC (what ``repository.to_db`` stores)."""
    return None if value is None else dt(value.astimezone(UTC))


def parse_dt(text: str | None) -> datetime | None:
    """A stored time back as an aware UTC datetime (as ``repository.from_db`` reads it)."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


class UtcTexts(dict[datetime | None, str | None]):
    """``texts[value]`` is :func:`utc_dt` of ``value``, converted once per distinct time:
    the rows of a statement share a few (the round's now, its lease, a rate slot). Keyed
    by the instant, so only for :func:`utc_dt` (equal instants, same UTC text), never for
    :func:`dt`."""

    def __missing__(self, value: datetime | None) -> str | None:
        text = self[value] = utc_dt(value)
        return text


class ParsedTimes(dict[str | None, datetime | None]):
    """``times[text]`` is :func:`parse_dt` of ``text``, parsed once per distinct text."""

    def __missing__(self, text: str | None) -> datetime | None:
        value = self[text] = parse_dt(text)
        return value


async def execute(
    session: AsyncSession, sql: str, params: Any = ()
) -> CursorResult[*tuple[Any, ...]]:
    """Run ``sql`` through SQLAlchemy (``exec_driver_sql``: the engine's events fire), in
    the session's transaction; a list of tuples runs it once per tuple."""
    connection = await session.connection()
    return await connection.exec_driver_sql(sql, params)


async def _call(session: AsyncSession, sql: str, params: Any, mode: str) -> Any:
    connection = await session.connection()  # begins the transaction (BEGIN IMMEDIATE)
    driver: Any = (await connection.get_raw_connection()).driver_connection
    try:
        async with driver.cursor() as cursor:
            if mode == "many":
                await cursor.executemany(sql, params)
                return cursor.rowcount
            await cursor.execute(sql, params)
            return await cursor.fetchall() if mode == "fetch" else cursor.rowcount
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc


async def fetch(session: AsyncSession, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """The rows (tuples) of the query ``sql``, in the session's transaction."""
    rows: list[Any] = await _call(session, sql, params, "fetch")
    return rows


async def run(session: AsyncSession, sql: str, params: Sequence[Any] = ()) -> int:
    """Run the statement ``sql`` once, in the session's transaction; the rows changed."""
    changed: int = await _call(session, sql, params, "one")
    return changed


async def run_many(session: AsyncSession, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run ``sql`` once per row of ``rows``, in the session's transaction; the rows
    changed in all."""
    changed: int = await _call(session, sql, rows, "many")
    return changed


def marks(n: int, row: str = "?") -> str:
    """``?, ?, ...`` (or ``(?, ?), ...`` for row values) for an ``IN`` list of ``n``."""
    return ", ".join([row] * n)


class JobRow(NamedTuple):
    """A claimed ``jobs`` row (the columns ``repository.job_from_row`` reads), times as
    aware UTC datetimes and the payload decoded."""

    id: int
    incident_id: str
    customer_id: str
    stage: str
    revision: int
    due_at: datetime | None
    payload: Any
    status: str
    next_attempt_at: datetime | None
    attempts: int
    last_error: str | None
    provider_id: str | None
    channel: str | None


CLAIM = (
    "SELECT id, incident_id, customer_id, stage, revision, due_at, payload, status, "
    f"next_attempt_at, attempts, last_error, provider_id, channel FROM {JOBS_DUE} "
    "AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
)


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta
) -> tuple[list[JobRow], bool]:
    """``QueueRepository.claim_due`` on SQLite (``BEGIN IMMEDIATE`` serialises claimers)."""
    raw = await fetch(session, CLAIM, (utc_dt(now), limit + 1))
    times = ParsedTimes()
    rows = [
        JobRow(r[0], r[1], r[2], r[3], r[4], times[r[5]], json.loads(r[6]), r[7], times[r[8]],
               r[9], r[10], r[11], r[12])
        for r in raw[:limit]
    ]  # fmt: skip
    if rows:
        await run(
            session,
            "UPDATE notify.jobs SET status = 'sending', claimed_at = ?, next_attempt_at = ? "
            f"WHERE id IN ({marks(len(rows))})",
            (utc_dt(now), utc_dt(now + lease), *(r.id for r in rows)),
        )
    return rows, len(raw) <= limit


async def next_due(session: AsyncSession) -> datetime | None:
    """``QueueRepository.next_due`` on SQLite."""
    sql = f"SELECT min(next_attempt_at) FROM {JOBS_DUE}"
    return parse_dt((await fetch(session, sql))[0][0])


RECORD = (
    "UPDATE notify.jobs SET status = ?, next_attempt_at = ?, attempts = ?, channel = ?, "
    "address = ?, language = ?, sent_at = ?, last_error = ?, provider_id = ? "
    "WHERE id = ? AND claimed_at = ?"
)


async def record(session: AsyncSession, updates: Sequence[Any]) -> set[int]:
    """``QueueRepository.record`` on SQLite: the updates (``JobUpdate``), only where the
    claim is still ours; the ids whose claim was."""
    if not updates:
        return set()
    texts = UtcTexts()
    rows = [
        (u.status, texts[u.next_attempt_at], u.attempts, u.channel, u.address, u.language,
         texts[u.sent_at], u.last_error, u.provider_id, u.job_id, texts[u.claimed_at])
        for u in updates
    ]  # fmt: skip
    changed = await run_many(session, RECORD, rows)
    ids = [u.job_id for u in updates]
    if changed == len(set(ids)):
        return set(ids)  # every claim held (each update matches at most its own row)
    # Some claim was taken over. The update leaves claimed_at as it was, so reading it
    # now tells which rows it changed.
    claims = {r[9]: r[10] for r in rows}
    kept: set[int] = set()
    for start in range(0, len(ids), MAX_VARS):
        part = ids[start : start + MAX_VARS]
        found = await fetch(
            session,
            f"SELECT id, claimed_at FROM notify.jobs WHERE id IN ({marks(len(part))})",
            tuple(part),
        )
        kept.update(i for i, at in found if at == claims[i])
    return kept


async def add_attempts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """``QueueRepository.add_attempts`` on SQLite."""
    if rows:
        await run_many(
            session,
            "INSERT INTO notify.attempts (job_id, n, at, channel, ok, retryable, error, "
            "provider_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(r["job_id"], r["n"], dt(r["at"]), r["channel"], r["ok"], r["retryable"],
              r["error"], r["provider_id"]) for r in rows],
        )  # fmt: skip


async def set_last_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """``QueueRepository.set_last_messages`` on SQLite (the last row of a customer wins)."""
    latest = {r["customer_id"]: r for r in rows}
    texts = UtcTexts()
    if latest:
        await run_many(
            session,
            "INSERT INTO notify.last_message (customer_id, at, stage, incident_id, channel, "
            "body) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET "
            "at = excluded.at, stage = excluded.stage, incident_id = excluded.incident_id, "
            "channel = excluded.channel, body = excluded.body",
            [(c, texts[r["at"]], r["stage"], r["incident_id"], r["channel"], r["body"])
             for c, r in latest.items()],
        )  # fmt: skip


async def add_outbox(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """``QueueRepository.add_outbox`` on SQLite (through SQLAlchemy: see the module
    docstring)."""
    if rows:
        await execute(
            session,
            'INSERT INTO notify.outbox (aggregate_id, seq, topic, "key", payload, created_at) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(r["aggregate_id"], r["seq"], r["topic"], r["key"], r["payload"],
              dt(r["created_at"])) for r in rows],
        )  # fmt: skip


async def present(
    session: AsyncSession, table: str, column: str, values: Sequence[str]
) -> set[str]:
    """The ``values`` found in ``table.column`` (constant names, never input)."""
    found: set[str] = set()
    for start in range(0, len(values), MAX_VARS):
        part = tuple(values[start : start + MAX_VARS])
        rows = await fetch(
            session, f"SELECT {column} FROM {table} WHERE {column} IN ({marks(len(part))})", part
        )
        found.update(r[0] for r in rows)
    return found


async def opted_out(session: AsyncSession, customers: Sequence[str]) -> set[str]:
    """``QueueRepository.opted_out`` on SQLite."""
    return await present(session, "notify.opt_outs", "customer_id", customers)


async def pending_escalations(
    session: AsyncSession, pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """``QueueRepository.pending_escalations`` on SQLite."""
    found: set[tuple[str, str]] = set()
    step = MAX_VARS // 2
    for start in range(0, len(pairs), step):
        part = pairs[start : start + step]
        rows = await fetch(
            session,
            "SELECT incident_id, customer_id FROM notify.escalations WHERE status = 'pending' "
            f"AND (incident_id, customer_id) IN (VALUES {marks(len(part), '(?, ?)')})",
            tuple(v for pair in part for v in pair),
        )
        found.update((r[0], r[1]) for r in rows)
    return found
