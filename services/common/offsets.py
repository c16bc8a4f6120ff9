"""Consumer offsets stored beside the state they describe (``<schema>.consumer_offsets``).

Written in the same transaction as the effects of the records consumed, so a crash either
keeps both or neither. ``next_offset`` is the next offset to read (Kafka convention).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    and_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.base import TopicPartition
from services.common.orm import metadata_for

TABLE_NAME = "consumer_offsets"


def define_consumer_offsets(metadata: MetaData) -> Table:
    """The ``consumer_offsets`` table on ``metadata`` (idempotent: returns it if defined)."""
    key = f"{metadata.schema}.{TABLE_NAME}" if metadata.schema else TABLE_NAME
    if key in metadata.tables:
        return metadata.tables[key]
    return Table(
        TABLE_NAME,
        metadata,
        Column("group_id", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("next_offset", BigInteger, nullable=False),
        PrimaryKeyConstraint("group_id", "topic", "partition"),
    )


@cache
def consumer_offsets_table(schema: str) -> Table:
    return define_consumer_offsets(metadata_for(schema))


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


class OffsetStore:
    """Reads and writes ``<schema>.consumer_offsets`` inside the caller's transaction."""

    def __init__(self, schema: str) -> None:
        self.table = consumer_offsets_table(schema)

    async def load(
        self, session: AsyncSession, group_id: str, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Stored next offsets for ``partitions``; partitions never stored are left out."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        t = self.table
        rows = await session.execute(
            select(t.c.topic, t.c.partition, t.c.next_offset).where(
                t.c.group_id == group_id,
                tuple_(t.c.topic, t.c.partition).in_([(tp.topic, tp.partition) for tp in wanted]),
            )
        )
        return {TopicPartition(r.topic, r.partition): r.next_offset for r in rows}

    async def store(
        self, session: AsyncSession, group_id: str, offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Upsert next offsets (last writer wins)."""
        if not offsets:
            return
        stmt = _insert(session, self.table)
        rows = [
            {"group_id": group_id, "topic": tp.topic, "partition": tp.partition, "next_offset": o}
            for tp, o in sorted(offsets.items())
        ]
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["group_id", "topic", "partition"],
                set_={"next_offset": stmt.excluded.next_offset},
            ),
            rows,
        )

    async def advance(
        self,
        session: AsyncSession,
        group_id: str,
        tp: TopicPartition,
        expected: int | None,
        new: int,
    ) -> bool:
        """Compare-and-set: move ``tp`` from ``expected`` (None: never stored) to ``new``.

        False when another consumer moved it first (a rebalance left two consumers on one
        partition for a moment); the caller must then roll back its batch. On PostgreSQL
        the row lock makes the second writer wait and then see the first one's value.
        """
        t = self.table
        where = and_(t.c.group_id == group_id, t.c.topic == tp.topic, t.c.partition == tp.partition)
        if expected is None:
            stmt = _insert(session, t).values(
                group_id=group_id, topic=tp.topic, partition=tp.partition, next_offset=new
            )
            result: Any = await session.execute(stmt.on_conflict_do_nothing())
        else:
            result = await session.execute(
                update(t).where(where, t.c.next_offset == expected).values(next_offset=new)
            )
        return bool(result.rowcount == 1)
