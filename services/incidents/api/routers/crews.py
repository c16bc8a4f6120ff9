"""``/api/v1/crews``: list (viewer), create (supervisor), update status/location (operator)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from services.incidents import crew_store as store
from services.incidents.api.auth import Operator, Supervisor, Viewer
from services.incidents.api.context import Context, Uow
from services.incidents.api.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor
from services.incidents.api.problems import ApiProblem, problem_responses
from services.incidents.audit_log import record_audit

router = APIRouter(prefix="/api/v1/crews", tags=["crews"])
CrewStatus = Literal["available", "dispatched", "on_site", "off"]
CrewId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


class Crew(BaseModel):
    id: str
    name: str
    status: CrewStatus
    location: str | None = None
    current_incident_id: str | None = None
    updated_at: datetime


class CrewCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": "CREW-7", "name": "Yunhe line crew 7"}]},
    )

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    status: CrewStatus = "available"
    location: str | None = Field(default=None, max_length=200)


class CrewUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "off"}, {"location": "Yunhe substation"}]},
    )

    status: CrewStatus | None = None
    location: str | None = Field(default=None, max_length=200)


@router.get(
    "",
    summary="List crews",
    response_model=Page[Crew],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_crews(
    uow: Uow,
    _principal: Viewer,
    status: Annotated[CrewStatus | None, Query(description="Only crews in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Page[Crew]:
    """Crews in id order."""
    position = decode_cursor(cursor) or {}
    after = position.get("after")
    if after is not None and not isinstance(after, str):
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid")
    rows = await store.list_crews(uow.session, after=after, limit=limit + 1, status=status)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[Crew](
        items=[Crew.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=encode_cursor({"after": rows[-1].id}) if more and rows else None,
    )


@router.post(
    "",
    summary="Create a crew",
    status_code=status.HTTP_201_CREATED,
    response_model=Crew,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_crew(ctx: Context, uow: Uow, principal: Supervisor, body: CrewCreate) -> Crew:
    """Add a crew; 409 when the id is taken."""
    crew = store.Crew(
        id=body.id, name=body.name, status=body.status, location=body.location,
        current_incident_id=None, updated_at=ctx.clock.now(),
    )  # fmt: skip
    if not await store.add_crew(uow.session, crew):
        raise ApiProblem(409, "conflict", f"crew {body.id} exists")
    await record_audit(
        uow.session, actor=principal.sub, action="crew.create", before=None,
        after=crew.as_dict(), at=crew.updated_at,
    )  # fmt: skip
    await uow.commit()
    return Crew.model_validate(crew, from_attributes=True)


@router.patch(
    "/{crew_id}",
    summary="Update a crew's status or location",
    response_model=Crew,
    responses=problem_responses(401, 403, 404, 422),
)
async def update_crew(
    ctx: Context, uow: Uow, principal: Operator, crew_id: CrewId, body: CrewUpdate
) -> Crew:
    """Set the fields given in the body."""
    before = await store.get_crew(uow.session, crew_id, lock=True)
    if before is None:
        raise ApiProblem(404, "not_found", f"no crew {crew_id}")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("status", "") is None:
        raise ApiProblem(422, "invalid_request", "status cannot be null")
    now = ctx.clock.now()
    await store.update_crew(uow.session, crew_id, **changes, updated_at=now)
    after = await store.get_crew(uow.session, crew_id)
    assert after is not None
    await record_audit(
        uow.session, actor=principal.sub, action="crew.update", before=before.as_dict(),
        after=after.as_dict(), at=now,
    )  # fmt: skip
    await uow.commit()
    return Crew.model_validate(after, from_attributes=True)
