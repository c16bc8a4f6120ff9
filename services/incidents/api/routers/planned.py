"""``/api/v1/planned-outages``: list (viewer), schedule, start, complete, cancel (supervisor)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.incidents import planned as service
from services.incidents.api.auth import Principal, Supervisor, Viewer
from services.incidents.api.context import ApiContext, Context, Uow
from services.incidents.api.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor
from services.incidents.api.problems import ApiProblem, problem_responses
from services.incidents.handlers import HandlerContext

router = APIRouter(prefix="/api/v1/planned-outages", tags=["planned outages"])
PlannedStatus = Literal["scheduled", "in_progress", "completed", "cancelled"]
PlannedId = Annotated[str, Path(min_length=1, max_length=100)]


class PlannedOutage(BaseModel):
    id: str
    kind: Literal["planned", "temporary"]
    status: PlannedStatus
    feeder_id: str
    device_id: str | None = None
    transformer_id: str | None = None
    starts_at: datetime
    ends_at: datetime
    reason: str
    incident_id: str | None = Field(description="The planned incident (same id)")
    created_by: str
    created_at: datetime


class PlannedCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"feeder_id": "F01", "device_id": "F01-FU7",
                 "starts_at": "2026-07-21T09:00:00+08:00", "ends_at": "2026-07-21T13:00:00+08:00",
                 "reason": "transformer replacement"}
            ]
        },
    )  # fmt: skip

    kind: Literal["planned", "temporary"] = Field(
        default="planned", description="temporary = maintenance announced 24 h ahead"
    )
    feeder_id: str = Field(min_length=1, max_length=64)
    device_id: str | None = Field(
        default=None, max_length=64, description="Default: the whole feeder"
    )
    transformer_id: str | None = Field(default=None, max_length=64)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


@router.get(
    "",
    summary="List planned outages",
    response_model=Page[PlannedOutage],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_planned(
    uow: Uow,
    _principal: Viewer,
    status: Annotated[PlannedStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Page[PlannedOutage]:
    """Planned outages by id."""
    after = (decode_cursor(cursor) or {}).get("after")
    if after is not None and not isinstance(after, str):
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid")
    rows = await service.list_planned(uow.session, after=after, limit=limit + 1, status=status)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[PlannedOutage](
        items=[PlannedOutage.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=encode_cursor({"after": rows[-1].id}) if more and rows else None,
    )


def _handlers(ctx: ApiContext) -> HandlerContext:
    if ctx.handlers is None:
        raise ApiProblem(503, "actions_unavailable", "this API process cannot change incidents")
    return ctx.handlers


@router.post(
    "",
    summary="Schedule a planned outage",
    status_code=status.HTTP_201_CREATED,
    response_model=PlannedOutage,
    responses=problem_responses(401, 403, 422, 503),
)
async def create_planned(
    ctx: Context, uow: Uow, principal: Supervisor, body: PlannedCreate
) -> PlannedOutage:
    """Creates the planned incident (status ``scheduled``) and announces its customers."""
    planned = await service.schedule_planned(
        uow, _handlers(ctx), kind=body.kind, feeder_id=body.feeder_id, device_id=body.device_id,
        transformer_id=body.transformer_id, starts_at=body.starts_at, ends_at=body.ends_at,
        reason=body.reason, actor=principal.sub,
    )  # fmt: skip
    await uow.commit()
    return PlannedOutage.model_validate(planned, from_attributes=True)


async def _advance(
    ctx: ApiContext, uow: Uow, principal: Principal, planned_id: str, to: str
) -> PlannedOutage:
    planned = await service.advance_planned(uow, _handlers(ctx), planned_id, to, principal.sub)
    await uow.commit()
    return PlannedOutage.model_validate(planned, from_attributes=True)


_ADVANCE = problem_responses(401, 403, 404, 409, 422, 503)


@router.post("/{planned_id}/start", summary="Start the work (customers now out)",
             response_model=PlannedOutage, responses=_ADVANCE)  # fmt: skip
async def start(
    ctx: Context, uow: Uow, principal: Supervisor, planned_id: PlannedId
) -> PlannedOutage:
    """``scheduled`` → ``in_progress``."""
    return await _advance(ctx, uow, principal, planned_id, "in_progress")


@router.post("/{planned_id}/complete", summary="Complete the work (customers restored)",
             response_model=PlannedOutage, responses=_ADVANCE)  # fmt: skip
async def complete(
    ctx: Context, uow: Uow, principal: Supervisor, planned_id: PlannedId
) -> PlannedOutage:
    """``in_progress`` → ``completed``."""
    return await _advance(ctx, uow, principal, planned_id, "completed")


@router.post("/{planned_id}/cancel", summary="Cancel before it starts",
             response_model=PlannedOutage, responses=_ADVANCE)  # fmt: skip
async def cancel(
    ctx: Context, uow: Uow, principal: Supervisor, planned_id: PlannedId
) -> PlannedOutage:
    """``scheduled`` → ``cancelled``."""
    return await _advance(ctx, uow, principal, planned_id, "cancelled")
