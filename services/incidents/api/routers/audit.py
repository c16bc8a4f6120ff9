"""``GET /api/v1/audit``: the append-only audit log (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from services.incidents.api.auth import Admin
from services.incidents.api.context import Uow
from services.incidents.api.pagination import MAX_LIMIT, Page, encode_cursor, id_after
from services.incidents.api.problems import problem_responses
from services.incidents.audit_log import list_audit

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditRecord(BaseModel):
    """One write: who, when, what, and the state before and after."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": 7, "at": "2026-07-14T00:10:00+00:00", "actor": "li.wei",
                 "action": "acknowledge", "incident_id": "INC-F01-0001",
                 "before": {"status": "detected"}, "after": {"status": "confirmed"}}
            ]
        }
    )  # fmt: skip

    id: int
    at: datetime
    actor: str
    action: str
    incident_id: str | None = None
    before: dict[str, Any] | list[Any] | None = None
    after: dict[str, Any] | list[Any] | None = None


@router.get(
    "/audit",
    summary="The audit log, oldest first",
    response_model=Page[AuditRecord],
    responses=problem_responses(400, 401, 403, 422),
)
async def get_audit(
    uow: Uow,
    _principal: Admin,
    actor: Annotated[str | None, Query(description="Only this actor's writes")] = None,
    action: Annotated[str | None, Query(description="Only this action")] = None,
    incident_id: Annotated[str | None, Query(description="Only this incident")] = None,
    since: Annotated[datetime | None, Query(description="At or after (RFC 3339)")] = None,
    until: Annotated[datetime | None, Query(description="Before (RFC 3339)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Page[AuditRecord]:
    """Audit entries in the order they were written."""
    rows = await list_audit(
        uow.session, after_id=id_after(cursor), limit=limit + 1, actor=actor, action=action,
        incident_id=incident_id, since=since, until=until,
    )  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[AuditRecord](
        items=[AuditRecord.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=encode_cursor({"after": rows[-1].id}) if more and rows else None,
    )
