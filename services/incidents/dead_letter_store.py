"""The incidents API's queries on ``ingest.dead_letters`` (browse and replay, DESIGN §14).

Services share no code, only tables they are granted: the API reads ingest's dead-letter
table through this lightweight column list (not ingest's ORM) and only ever sets
``replayed_at``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

dead_letters = sa.table(
    "dead_letters",
    sa.column("id", sa.BigInteger()),
    sa.column("service", sa.Text()),
    sa.column("topic", sa.Text()),
    sa.column("partition", sa.Integer()),
    sa.column("offset", sa.BigInteger()),
    sa.column("key", sa.Text()),
    sa.column("value", sa.Text()),
    sa.column("encoding", sa.Text()),
    sa.column("error_code", sa.Text()),
    sa.column("error_message", sa.Text()),
    sa.column("error_path", sa.Text()),
    sa.column("failed_at", sa.DateTime(timezone=True)),
    sa.column("replayed_at", sa.DateTime(timezone=True)),
    schema="ingest",
)


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
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
        if self.encoding == "base64":
            return base64.b64decode(self.value)
        return self.value.encode("utf-8", "surrogateescape")

    @property
    def raw_key(self) -> bytes | None:
        return None if self.key is None else self.key.encode("utf-8", "surrogateescape")

    def as_wire(self) -> dict[str, Any]:
        """The dead-letter shape of DESIGN section 3 plus ``id`` and ``replayed_at``."""
        return {
            "id": self.id, "service": self.service, "topic": self.topic,
            "partition": self.partition, "offset": self.offset, "key": self.key,
            "value": self.value, "encoding": self.encoding,
            "error": {"code": self.error_code, "message": self.error_message,
                      "path": self.error_path},
            "failed_at": self.failed_at, "replayed_at": self.replayed_at,
        }  # fmt: skip


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # SQLite returns naive UTC


def _to_row(row: Any) -> DeadLetterRow:
    values = dict(row._mapping)
    values["failed_at"] = _utc(values["failed_at"])
    values["replayed_at"] = _utc(values["replayed_at"])
    return DeadLetterRow(**values)


async def list_dead_letters(
    session: AsyncSession,
    *,
    after_id: int,
    limit: int,
    code: str | None = None,
    replayed: bool | None = None,
) -> list[DeadLetterRow]:
    """Dead letters with id > ``after_id`` in id order, optionally by error code / replay."""
    t = dead_letters
    stmt = sa.select(t).where(t.c.id > after_id).order_by(t.c.id).limit(limit)
    if code is not None:
        stmt = stmt.where(t.c.error_code == code)
    if replayed is not None:
        stmt = stmt.where(t.c.replayed_at.is_not(None) if replayed else t.c.replayed_at.is_(None))
    return [_to_row(r) for r in await session.execute(stmt)]


async def get_dead_letter(
    session: AsyncSession, dead_letter_id: int, *, lock: bool = False
) -> DeadLetterRow | None:
    """One dead letter, or None; ``lock`` holds its row for the transaction (replay)."""
    stmt = sa.select(dead_letters).where(dead_letters.c.id == dead_letter_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    return None if row is None else _to_row(row)


async def mark_replayed(session: AsyncSession, dead_letter_id: int, at: datetime) -> None:
    """Set ``replayed_at``; does not commit."""
    await session.execute(
        sa.update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(replayed_at=at)
    )
