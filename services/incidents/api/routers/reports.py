"""``GET /api/v1/reports/{kind}``: the management reports of DESIGN section 11 (manager)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from services.incidents.api.auth import Manager
from services.incidents.api.context import Context, Uow
from services.incidents.api.problems import ApiProblem, problem_responses
from services.incidents.report_data import build_report
from services.incidents.reports.render import render_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
ReportKind = Literal["reliability", "sla", "voltage", "satisfaction"]
GroupBy = Literal["all", "area", "feeder", "substation"]
Format = Literal["json", "csv", "html"]
# bounds the work of one request (daily series, MED history); a decade covers every use
MAX_PERIOD = timedelta(days=3660)
_EXAMPLE = {"period": {"start": "2026-07-01T00:00:00+00:00", "end": "2026-08-01T00:00:00+00:00"},
            "groups": [{"key": "all", "saifi": 0.12, "saidi": 9.8}]}  # fmt: skip


@router.get(
    "/{kind}",
    summary="A reliability, SLA, voltage or satisfaction report for a period",
    response_model=dict[str, Any],
    responses={
        200: {
            "description": "The report (JSON by default; CSV or HTML with `format`)",
            "content": {
                "application/json": {"example": _EXAMPLE},
                "text/csv": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **problem_responses(401, 403, 422),
    },
)
async def get_report(
    ctx: Context,
    uow: Uow,
    _principal: Manager,
    kind: Annotated[ReportKind, Path(description="Which report")],
    start: Annotated[datetime, Query(description="Period start (RFC 3339)")],
    end: Annotated[datetime, Query(description="Period end, exclusive (RFC 3339)")],
    group_by: Annotated[GroupBy, Query(description="Grouping of the figures")] = "all",
    format: Annotated[Format, Query(description="json, csv or html")] = "json",  # noqa: A002
) -> Response:
    """Figures of DESIGN section 11 for ``start`` ≤ t < ``end``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ApiProblem(422, "invalid_request", "start and end need a UTC offset")
    if end <= start:
        raise ApiProblem(422, "invalid_request", "end must be after start")
    if start.year < 1970 or end.year > 2200:
        raise ApiProblem(422, "invalid_request", "start and end must lie in 1970–2200")
    if end - start > MAX_PERIOD:
        raise ApiProblem(422, "invalid_request", f"the period is limited to {MAX_PERIOD.days} days")
    report = await build_report(uow.session, kind, start, end, group_by, ctx.policy)
    body, media_type = render_report(kind, report, format)
    return Response(content=body, media_type=media_type)
