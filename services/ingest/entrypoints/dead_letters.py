"""Export and re-submit stored dead letters (``outagedesk dead-letters export|replay``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus.base import OutMessage, Producer
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.ingest.repository import StoredDeadLetter, list_dead_letters, mark_replayed

PAGE = 1000


async def iter_dead_letters(
    sessions: async_sessionmaker[AsyncSession], *, unreplayed_only: bool = False
) -> AsyncIterator[StoredDeadLetter]:
    """Every stored dead letter in id order, read a page at a time."""
    after = 0
    while True:
        async with UnitOfWork(sessions) as uow:
            page = await list_dead_letters(
                uow.session, after_id=after, limit=PAGE, unreplayed_only=unreplayed_only
            )
        for row in page:
            yield row
        if len(page) < PAGE:
            return
        after = page[-1].id


async def replay_dead_letters(
    sessions: async_sessionmaker[AsyncSession],
    producer: Producer,
    clock: Clock,
    *,
    ids: Sequence[int] | None,
) -> list[int]:
    """Re-send the original bytes of the given dead letters (``ids`` None: every one not yet
    replayed) to their original topic under their original key, then mark them replayed.
    Sent before marked: a crash in between re-sends, never loses. The ids replayed."""
    done: list[int] = []
    after = 0
    while True:
        async with UnitOfWork(sessions) as uow:
            page = await list_dead_letters(
                uow.session,
                ids=ids,
                unreplayed_only=ids is None,
                after_id=after,
                limit=PAGE,
            )
            if not page:
                return done
            await producer.send([OutMessage(d.topic, d.raw_value, d.raw_key) for d in page])
            page_ids = [d.id for d in page]
            await mark_replayed(uow.session, page_ids, clock.now())
            await uow.commit()
        done.extend(page_ids)
        after = page[-1].id
