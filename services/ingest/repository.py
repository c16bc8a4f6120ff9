"""Every query on schema ``ingest``: storing, listing and marking replayed dead letters."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.domain.results import DeadLetter, decode_value
from services.ingest.orm import dead_letters


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A row of ``ingest.dead_letters``."""

    id: int
    service: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str
    encoding: str | None
    error_code: str
    error_message: str
    error_path: str | None
    failed_at: datetime
    replayed_at: datetime | None

    @property
    def raw_value(self) -> bytes:
        """The original message bytes."""
        return decode_value(self.value, self.encoding)

    @property
    def raw_key(self) -> bytes | None:
        # Keys are stored as text; undecodable bytes were escaped, the best we can restore.
        return None if self.key is None else self.key.encode("utf-8", "surrogateescape")

    def as_wire(self) -> dict[str, Any]:
        """The DESIGN section 3 dead-letter shape plus ``id`` and ``replayed_at``."""
        out: dict[str, Any] = {
            "id": self.id,
            "service": self.service,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "value": self.value,
            "error": {
                "code": self.error_code,
                "message": self.error_message,
                "path": self.error_path,
            },
            "failed_at": self.failed_at,
            "replayed_at": self.replayed_at,
        }
        if self.encoding is not None:
            out["encoding"] = self.encoding
        return out


def _row(dead: DeadLetter) -> dict[str, Any]:
    value, encoding = dead.value_and_encoding
    return {
        "service": dead.service,
        "topic": dead.topic,
        "partition": dead.partition,
        "offset": dead.offset,
        "key": dead.key,
        "value": value,
        "encoding": encoding,
        "error_code": dead.code,
        "error_message": dead.message,
        "error_path": dead.path,
        "failed_at": dead.failed_at,
    }


async def add_dead_letters(session: AsyncSession, items: Sequence[DeadLetter]) -> None:
    """Insert dead letters, ignoring any already stored for the same topic/partition/offset
    (a redelivered batch). Does not commit."""
    if not items:
        return
    rows = [_row(d) for d in items]
    # PostgreSQL text cannot hold NUL; such values are valid UTF-8 but stored as base64.
    for row in rows:
        if row["encoding"] is None and "\x00" in row["value"]:
            row["value"], row["encoding"] = _b64(row["value"].encode("utf-8")), "base64"
        if row["key"] is not None and "\x00" in row["key"]:
            row["key"] = row["key"].replace("\x00", "\\x00")
    dialect = session.get_bind().dialect.name
    index = ["topic", "partition", "offset"]
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(dead_letters).on_conflict_do_nothing(index_elements=index)
    elif dialect == "sqlite":
        stmt = sqlite.insert(dead_letters).on_conflict_do_nothing(index_elements=index)
    else:
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    await session.execute(stmt, rows)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


async def list_dead_letters(
    session: AsyncSession,
    *,
    ids: Sequence[int] | None = None,
    unreplayed_only: bool = False,
    after_id: int = 0,
    limit: int | None = None,
) -> list[StoredDeadLetter]:
    """Stored dead letters in id order, optionally only ``ids`` or only not yet replayed."""
    stmt = sa.select(dead_letters).where(dead_letters.c.id > after_id).order_by(dead_letters.c.id)
    if ids is not None:
        stmt = stmt.where(dead_letters.c.id.in_(list(ids)))
    if unreplayed_only:
        stmt = stmt.where(dead_letters.c.replayed_at.is_(None))
    if limit is not None:
        stmt = stmt.limit(limit)
    result = await session.execute(stmt)
    out = []
    for row in result:
        values = dict(row._mapping)
        values["failed_at"] = _utc(values["failed_at"])
        values["replayed_at"] = _utc(values["replayed_at"])
        out.append(StoredDeadLetter(**values))
    return out


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back naive; they were written in UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def mark_replayed(session: AsyncSession, ids: Sequence[int], at: datetime) -> None:
    """Set ``replayed_at`` on the given dead letters. Does not commit."""
    if ids:
        await session.execute(
            sa.update(dead_letters).where(dead_letters.c.id.in_(list(ids))).values(replayed_at=at)
        )
