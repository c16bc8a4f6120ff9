"""``GET /api/v1/customers/lookup?q=``: the call centre's lookup (viewer).

By customer id, meter id or phone number → the customer, the incident they are out in (or
the latest one) and its ETR. ``last_message`` is always null for now: the messages sent live
in the notify service's schema, which this service does not read (services share only
Kafka); it is kept in the shape so clients need not change when a read model arrives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.incidents import repository
from services.incidents.api import models
from services.incidents.api.auth import Viewer
from services.incidents.api.context import Uow
from services.incidents.api.problems import ApiProblem, problem_responses

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


class InterruptionSpan(BaseModel):
    start: datetime | None = None
    end: datetime | None = None


class CustomerLookup(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"customer": {"id": "C000001", "meter": "M000001", "transformer": "T0001",
                              "class": "residential", "critical": False, "sms": "+8613800000001"},
                 "out": True, "incident": models.INCIDENT_EXAMPLE,
                 "etr": "2026-07-14T03:00:00+00:00",
                 "interruption": {"start": "2026-07-14T00:02:11+00:00", "end": None},
                 "last_message": None}
            ]
        }
    )  # fmt: skip

    customer: dict[str, Any] = Field(description="The customer's topology record and contacts")
    out: bool = Field(description="True while the customer's interruption is open")
    incident: models.Incident | None = None
    etr: datetime | None = None
    interruption: InterruptionSpan | None = None
    last_message: dict[str, Any] | None = Field(
        default=None, description="Always null for now (notify's data is not read here)"
    )


@router.get(
    "/lookup",
    summary="Find a customer by id, meter or phone",
    response_model=CustomerLookup,
    responses=problem_responses(401, 403, 404, 422),
)
async def lookup(
    uow: Uow,
    _principal: Viewer,
    q: Annotated[str, Query(min_length=1, max_length=100, description="Customer id, meter, phone")],
) -> CustomerLookup:
    """The customer, current (or latest) incident and ETR."""
    found = await repository.find_customer(uow.session, q.strip())
    if found is None:
        raise ApiProblem(404, "not_found", "no customer with that id, meter or phone")
    return CustomerLookup.model_validate({**found, "last_message": None})
