"""``/api/v1/incidents``: list, detail, affected customers and the operator actions.

Every write needs ``If-Match`` (428 without; 412 when stale) and answers the new detail with
its ``ETag``. Actions run through :func:`services.incidents.actions.perform_action`, which
checks the version under the feeder lock, so of two writers racing exactly one gets 412.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Header, Path, Query, Response
from pydantic import AwareDatetime, BaseModel

from services.common.db import UnitOfWork
from services.incidents import repository
from services.incidents.actions import perform_action
from services.incidents.api import models, pg_reads
from services.incidents.api.auth import Operator, Principal, Supervisor, Viewer
from services.incidents.api.context import ApiContext, Context, Uow
from services.incidents.api.etag import etag_for, parse_if_match
from services.incidents.api.fast_reads import split_csv
from services.incidents.api.pagination import MAX_LIMIT, Page
from services.incidents.api.problems import ApiProblem, problem_responses
from services.incidents.api.responses import json_response
from services.incidents.crew_store import get_crew
from services.incidents.repository import IncidentFilters

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
IncidentId = Annotated[str, Path(min_length=1, max_length=100, description="Incident id")]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The ETag of the detail last read")
]
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 412, 422, 428, 503)
ETAG_HEADER = {"ETag": {"description": "The incident's new version", "schema": {"type": "string"}}}


@router.get(
    "",
    summary="List incidents, newest first",
    response_model=Page[models.Incident],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_incidents(
    ctx: Context,
    _principal: Viewer,
    status: Annotated[
        list[str] | None, Query(description="Any of (repeat or comma-separate)")
    ] = None,
    kind: Annotated[list[Literal["outage", "voltage", "planned"]] | None, Query()] = None,
    feeder: Annotated[list[str] | None, Query(description="Any of these feeders")] = None,
    area: Annotated[list[Literal["urban", "rural", "remote"]] | None, Query()] = None,
    sla: Annotated[
        Literal["on_track", "at_risk", "met", "breached"] | None,
        Query(description="Incidents with any SLA target in this state"),
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="Detected at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Detected before")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in id, cause or notes")
    ] = None,
    sort: Annotated[
        Literal["-detected_at"], Query(description="Newest first (the only order offered)")
    ] = "-detected_at",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Response:
    """Incident snapshots matching every filter given; ``next_cursor`` pages on."""
    filters = IncidentFilters(
        status=split_csv(status), kind=list(kind or ()), feeder=split_csv(feeder),
        area=list(area or ()), sla=sla, since=since, until=until, q=q or None,
    )  # fmt: skip
    try:
        if ctx.reads.enabled:
            async with ctx.reads.connection() as conn:
                body = await pg_reads.list_page_json(conn, filters, cursor or None, limit)
            return Response(body, media_type="application/json")
        async with UnitOfWork(ctx.sessions) as uow:
            page = await repository.list_incidents(uow.session, filters, cursor or None, limit)
    except (ValueError, TypeError) as exc:
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid") from exc
    return json_response({"items": page.items, "next_cursor": page.next_cursor})


async def _detail(uow: Any, incident_id: str) -> Response:
    detail = await repository.get_incident(uow.session, incident_id)
    if detail is None:
        raise ApiProblem(404, "not_found", f"incident {incident_id} not found")
    return json_response(detail.to_dict(), {"ETag": etag_for(incident_id, detail.version)})


@router.get(
    "/{incident_id}",
    summary="One incident with timeline, ETR history, SLA and impact",
    response_model=models.IncidentDetail,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(401, 403, 404, 422)},
)
async def get_incident(ctx: Context, _principal: Viewer, incident_id: IncidentId) -> Response:
    """The detail view; its ``ETag`` goes into ``If-Match`` of the next write."""
    if not ctx.reads.enabled:
        async with UnitOfWork(ctx.sessions) as uow:
            return await _detail(uow, incident_id)
    async with ctx.reads.connection() as conn:
        found = await pg_reads.detail_json(conn, incident_id)
    if found is None:
        raise ApiProblem(404, "not_found", f"incident {incident_id} not found")
    body, version = found
    return Response(body, media_type="application/json",
                    headers={"ETag": etag_for(incident_id, version)})  # fmt: skip


# the two routes' objects: api.fast_reads answers for them and labels its answers with them
list_route, detail_route = (
    next(r for r in router.routes if getattr(r, "name", None) == name)
    for name in ("list_incidents", "get_incident")
)


@router.get(
    "/{incident_id}/customers",
    summary="Customers the incident affected, with their interruptions",
    response_model=Page[models.AffectedCustomer],
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def affected_customers(
    uow: Uow,
    _principal: Viewer,
    incident_id: IncidentId,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Page[models.AffectedCustomer]:
    """By customer id; the interruption shown is the one that counts for the customer."""
    if await repository.incident_version(uow.session, incident_id) is None:
        raise ApiProblem(404, "not_found", f"incident {incident_id} not found")
    try:
        page = await repository.affected_customers(uow.session, incident_id, cursor or None, limit)
    except (ValueError, TypeError) as exc:
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid") from exc
    return Page[models.AffectedCustomer](
        items=[models.AffectedCustomer.model_validate(i) for i in page.items],
        next_cursor=page.next_cursor,
    )


async def _act(
    ctx: ApiContext,
    uow: Any,
    principal: Principal,
    incident_id: str,
    action: str,
    body: BaseModel | None,
    if_match: str | None,
) -> Response:
    version = parse_if_match(if_match, incident_id)
    if ctx.handlers is None:
        raise ApiProblem(503, "actions_unavailable", "this API process cannot change incidents")
    params = body.model_dump(exclude_none=True) if body is not None else {}
    if action == "crew" and await get_crew(uow.session, params["crew_id"]) is None:
        raise ApiProblem(422, "invalid_request", f"no crew {params['crew_id']}")
    detail = await perform_action(
        uow, incident_id, action, params, principal.sub, version, ctx.handlers
    )
    await uow.commit()
    return json_response(detail.to_dict(), {"ETag": etag_for(incident_id, detail.version)})


_F = TypeVar("_F", bound=Callable[..., Any])


def _write(path: str, summary: str, description: str) -> Callable[[_F], _F]:
    return router.post(
        f"/{{incident_id}}/{path}",
        summary=summary,
        description=description + " Needs `If-Match`; answers the new detail and `ETag`.",
        response_model=models.IncidentDetail,
        responses={200: {"headers": ETAG_HEADER}, **WRITE_ERRORS},
    )


@_write("acknowledge", "Acknowledge", "Confirms a detected incident; records who acknowledged.")
async def acknowledge(
    ctx: Context, uow: Uow, principal: Operator, incident_id: IncidentId,
    if_match: IfMatch = None, body: Annotated[models.AcknowledgeBody | None, Body()] = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "acknowledge", body, if_match)


@_write("crew", "Assign a crew", "Dispatch (or re-dispatch) a crew.")
async def assign_crew(
    ctx: Context, uow: Uow, principal: Operator, incident_id: IncidentId,
    body: models.CrewBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "crew", body, if_match)


@_write("arrived", "Crew on site", "The assigned crew arrived (now, or at `at`).")
async def arrived(
    ctx: Context, uow: Uow, principal: Operator, incident_id: IncidentId,
    body: models.ArrivedBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "arrived", body, if_match)


@_write("etr", "Set the ETR", "Set the estimated restoration time; its history is kept.")
async def set_etr(
    ctx: Context, uow: Uow, principal: Operator, incident_id: IncidentId,
    body: models.EtrBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "etr", body, if_match)


@_write("restore", "Restore", "Restore everyone, some customers, or the customers below points.")
async def restore(
    ctx: Context, uow: Uow, principal: Operator, incident_id: IncidentId,
    body: models.RestoreBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "restore", body, if_match)


@_write("close", "Close with a cause", "Close a restored incident (supervisor).")
async def close(
    ctx: Context, uow: Uow, principal: Supervisor, incident_id: IncidentId,
    body: models.CloseBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "close", body, if_match)


@_write("cancel", "Cancel", "A false alarm (supervisor).")
async def cancel(
    ctx: Context, uow: Uow, principal: Supervisor, incident_id: IncidentId,
    body: models.CancelBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "cancel", body, if_match)


@_write("merge", "Merge into another incident", "This incident is absorbed (supervisor).")
async def merge(
    ctx: Context, uow: Uow, principal: Supervisor, incident_id: IncidentId,
    body: models.MergeBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "merge", body, if_match)


@_write("notes", "Add a note", "A free-text note on the timeline.")
async def add_note(
    ctx: Context, uow: Uow, principal: Operator, incident_id: IncidentId,
    body: models.NoteBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "notes", body, if_match)


@_write("split", "Split off a nested outage", "Move customers into a new nested incident.")
async def split(
    ctx: Context, uow: Uow, principal: Operator, incident_id: IncidentId,
    body: models.SplitBody, if_match: IfMatch = None,
) -> Response:  # fmt: skip
    return await _act(ctx, uow, principal, incident_id, "split", body, if_match)
