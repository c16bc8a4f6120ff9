"""``/api/v1/dead-letters``: browse stored dead letters and replay one (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from services.common.bus.base import OutMessage
from services.incidents import dead_letter_store as store
from services.incidents.api.auth import Admin
from services.incidents.api.context import Context, Uow
from services.incidents.api.pagination import MAX_LIMIT, Page, encode_cursor, id_after
from services.incidents.api.problems import ApiProblem, problem_responses
from services.incidents.audit_log import record_audit

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


class DeadLetterError(BaseModel):
    code: str
    message: str
    path: str | None = None


class DeadLetter(BaseModel):
    """A rejected input message as stored by ingest (DESIGN section 3)."""

    id: int
    service: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str = Field(description="The raw bytes as text, or base64 when `encoding` says so")
    encoding: str | None = None
    error: DeadLetterError
    failed_at: datetime
    replayed_at: datetime | None = None


def _out(row: store.DeadLetterRow) -> DeadLetter:
    return DeadLetter.model_validate(row.as_wire())


@router.get(
    "",
    summary="List dead letters in id order",
    response_model=Page[DeadLetter],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_dead_letters(
    uow: Uow,
    _principal: Admin,
    code: Annotated[str | None, Query(description="Only this error code")] = None,
    replayed: Annotated[bool | None, Query(description="Only (not) yet replayed")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Page[DeadLetter]:
    """Dead letters, oldest first, ``limit`` at a time."""
    rows = await store.list_dead_letters(
        uow.session, after_id=id_after(cursor), limit=limit + 1, code=code, replayed=replayed
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"after": rows[-1].id}) if more and rows else None
    return Page[DeadLetter](items=[_out(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/{dead_letter_id}/replay",
    summary="Re-publish a dead letter to its original topic",
    response_model=DeadLetter,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def replay_dead_letter(
    ctx: Context,
    uow: Uow,
    principal: Admin,
    dead_letter_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> DeadLetter:
    """Send the original bytes under the original key, then mark the dead letter replayed.

    Sent before marked: a failure in between leaves it unmarked (replay again), never lost.
    """
    row = await store.get_dead_letter(uow.session, dead_letter_id, lock=True)
    if row is None:
        raise ApiProblem(404, "not_found", f"no dead letter {dead_letter_id}")
    producer = await ctx.producer()
    await producer.send([OutMessage(row.topic, row.raw_value, row.raw_key)])
    now = ctx.clock.now()
    await store.mark_replayed(uow.session, dead_letter_id, now)
    before: dict[str, Any] = {"id": dead_letter_id, "replayed_at": row.replayed_at}
    await record_audit(
        uow.session, actor=principal.sub, action="dead_letter.replay", before=before,
        after={"id": dead_letter_id, "topic": row.topic, "replayed_at": now}, at=now,
    )  # fmt: skip
    await uow.commit()
    replayed = await store.get_dead_letter(uow.session, dead_letter_id)
    assert replayed is not None
    return _out(replayed)
