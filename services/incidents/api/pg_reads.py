"""The incident list and detail on PostgreSQL, straight on asyncpg.

These two reads are what operators' screens poll all day. Through the SQLAlchemy session
each cost ~5 ms of CPU, most of it not in PostgreSQL: the session's BEGIN and ROLLBACK round
trips and the pool's pre-ping, statement compilation, row processing and the stdlib JSON
decoding of the snapshots. Here each is one statement on a connection of a small asyncpg
pool of the API's own (autocommit, so one round trip; one statement, so one consistent
snapshot), and the list page is spliced together from the snapshots' texts, ``version``
and ``impact`` added as text, without parsing them.

The answers are the same as :func:`services.incidents.incident_queries.list_incidents` and
``get_incident`` give (the generic path, used on SQLite); the API tests run on this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import URL

from services.incidents.incident_queries import IncidentFilters, decode_cursor, encode_cursor
from services.incidents.state_store import utc

POOL_MAX = 10
ACQUIRE_TIMEOUT_S = 10.0
# connection-level failures: the database is unreachable or overloaded (answered 503)
UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
    TimeoutError,
)


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Nothing to reset: these connections only run single autocommit SELECTs (asyncpg's
    default reset costs a round trip per request)."""


class ReadPool:
    """A lazily created asyncpg pool for the hot reads; ``None`` connections off PostgreSQL."""

    def __init__(self, url: URL | None) -> None:
        pg = url is not None and url.get_backend_name() == "postgresql"
        self._dsn = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if url is not None and pg
            else None
        )
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._dsn is not None

    async def _get(self) -> asyncpg.Pool:
        if self._pool is not None:  # the common case, without the lock's round
            return self._pool
        async with self._lock:
            if self._pool is None:
                assert self._dsn is not None
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=1, max_size=POOL_MAX, reset=_no_reset,
                    timeout=ACQUIRE_TIMEOUT_S, command_timeout=60,
                )  # fmt: skip
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection (only when :attr:`enabled`)."""
        pool = await self._get()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            yield conn

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


# the snapshot as its text; ``version`` and ``impact`` are spliced in here (merging them in
# PostgreSQL with ``||`` rebuilt each jsonb value: about twice the database's CPU per page)
_ITEM = (
    "SELECT i.id, i.detected_at, i.snapshot::text, i.version, i.impact::text "
    "FROM incidents.incidents i"
)


def list_sql(filters: IncidentFilters, cursor: str | None, limit: int) -> tuple[str, list[Any]]:
    """The list statement and its arguments (the filters of ``incident_queries``)."""
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for column, wanted in (
        ("status", filters.status), ("kind", filters.kind),
        ("feeder_id", filters.feeder), ("area", filters.area),
    ):  # fmt: skip
        if wanted:
            where.append(f"i.{column} = ANY({arg(list(wanted))}::text[])")
    if filters.sla:
        pattern = '%"' + filters.sla + '"%'
        where.append(f"i.sla::text LIKE {arg(pattern)}")
    if filters.since is not None:
        where.append(f"i.detected_at >= {arg(filters.since)}")
    if filters.until is not None:
        where.append(f"i.detected_at < {arg(filters.until)}")
    if filters.q:
        like = arg(f"%{filters.q}%")
        # only placeholders are interpolated; the values travel as arguments
        where.append(
            f"(i.id ILIKE {like} OR i.cause ILIKE {like} OR EXISTS (SELECT 1 FROM "  # noqa: S608
            f"incidents.notes n WHERE n.incident_id = i.id AND n.text ILIKE {like}))"
        )
    if cursor:
        at, iid = decode_cursor(cursor)
        at_dt = datetime.fromisoformat(at)
        if not isinstance(iid, str):
            raise ValueError("invalid cursor")
        # a row comparison: the (detected_at, id) index answers it directly
        where.append(f"(i.detected_at, i.id) < ({arg(at_dt)}, {arg(iid)})")
    sql = _ITEM + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY i.detected_at DESC, i.id DESC LIMIT {arg(limit + 1)}"
    return sql, args


async def list_page_json(
    conn: asyncpg.Connection, filters: IncidentFilters, cursor: str | None, limit: int
) -> bytes:
    """The list answer ``{"items": [...], "next_cursor": ...}`` as JSON bytes."""
    sql, args = list_sql(filters, cursor, limit)
    rows = await conn.fetch(sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more:
        last = rows[-1]
        nxt = encode_cursor(utc(last["detected_at"]).isoformat(), last["id"])  # type: ignore[union-attr]
    items = ",".join([_item(snapshot, version, impact) for _, _, snapshot, version, impact in rows])
    return f'{{"items":[{items}],"next_cursor":{orjson.dumps(nxt).decode()}}}'.encode()


def _item(snapshot: str, version: int, impact: str | None) -> str:
    """The snapshot's JSON text with ``version`` and ``impact`` added as its last members, as
    ``incident_queries`` adds them (a snapshot has neither key: ``Incident.snapshot``)."""
    extra = f'"version": {version}, "impact": {impact or "null"}}}'
    return f"{snapshot[:-1]}, {extra}" if snapshot != "{}" else "{" + extra


_DETAIL = """
SELECT i.snapshot::text, i.customer_minutes, i.version, i.sla::text, i.impact::text,
  ARRAY(SELECT ROW(t.n, t.at, t.actor, t.type, t.detail) FROM incidents.timeline t
        WHERE t.incident_id = i.id ORDER BY t.n) AS timeline,
  ARRAY(SELECT ROW(e.at, e.etr, e.actor, e.reason) FROM incidents.etr_history e
        WHERE e.incident_id = i.id ORDER BY e.n) AS etrs
FROM incidents.incidents i WHERE i.id = $1
"""


async def detail_json(conn: asyncpg.Connection, incident_id: str) -> tuple[bytes, int] | None:
    """The detail answer (snapshot, ``timeline``, ``etr_history``, ``sla``, ``impact``) as
    JSON bytes with the version for its ETag; None when the incident is unknown. Built as
    ``IncidentDetail.to_dict`` builds it."""
    r = await conn.fetchrow(_DETAIL, incident_id)
    if r is None:
        return None
    snapshot, customer_minutes, version, sla, impact, timeline, etrs = r
    doc: dict[str, Any] = orjson.loads(snapshot)
    doc["customer_minutes"] = customer_minutes
    doc["version"] = version
    doc["timeline"] = [
        {"n": n, "at": _iso(at), "actor": actor, "type": type_, "detail": detail}
        for n, at, actor, type_, detail in timeline
    ]
    doc["etr_history"] = [
        {"at": _iso(at), "etr": _iso(etr), "actor": actor, "reason": reason}
        for at, etr, actor, reason in etrs
    ]
    doc["sla"] = (orjson.loads(sla) if sla is not None else None) or {}
    doc["impact"] = orjson.loads(impact) if impact is not None else None
    return orjson.dumps(doc), int(version)


def _iso(value: datetime) -> str:
    return utc(value).isoformat()  # type: ignore[union-attr]
