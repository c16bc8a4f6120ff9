"""``GET /api/v1/customers/lookup?q=``: the call centre's lookup (viewer).

By customer id, meter id or phone number → the customer, the incident they are out in (or
the latest one), its ETR and the last message sent to them. The messages live in the notify
service's schema, which this service does not read (services share only Kafka): the last one
is learned from notify's ``notify.deliveries.v1`` outcomes
(:mod:`services.incidents.customer_messages`).
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


class LastMessage(BaseModel):
    """The latest message notify sent the customer (status ``sent``)."""

    incident_id: str
    stage: str = Field(description="outage_detected, etr_set, etr_changed, restored, …")
    channel: str = Field(description="sms | wechat | email | webhook")
    sent_at: datetime
    job_id: str


class CustomerLookup(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"customer": {"id": "C000001", "meter": "M000001", "transformer": "T0001",
                              "class": "residential", "critical": False, "sms": "+8613800000001"},
                 "out": True, "incident": models.INCIDENT_EXAMPLE,
                 "etr": "2026-07-14T03:00:00+00:00",
                 "interruption": {"start": "2026-07-14T00:02:11+00:00", "end": None},
                 "last_message": {"incident_id": "INC-F01-0001", "stage": "etr_set",
                                  "channel": "sms", "sent_at": "2026-07-14T00:20:00+00:00",
                                  "job_id": "J-88"}}
            ]
        }
    )  # fmt: skip

    customer: dict[str, Any] = Field(description="The customer's topology record and contacts")
    out: bool = Field(description="True while the customer's interruption is open")
    incident: models.Incident | None = None
    etr: datetime | None = None
    interruption: InterruptionSpan | None = None
    last_message: LastMessage | None = Field(
        default=None, description="The last message sent to the customer; null: none known"
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
    """The customer, current (or latest) incident, ETR and last message sent."""
    found = await repository.find_customer(uow.session, q.strip())
    if found is None:
        raise ApiProblem(404, "not_found", "no customer with that id, meter or phone")
    return CustomerLookup.model_validate(found)
