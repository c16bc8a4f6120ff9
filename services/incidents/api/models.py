"""Response and request bodies of the incident routes (OpenAPI schemas with examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

INCIDENT_EXAMPLE: dict[str, Any] = {
    "id": "INC-F01-0001", "kind": "outage", "status": "dispatched", "feeder_id": "F01",
    "device_id": "F01-FU7", "transformer_id": None, "customer_id": None, "area": "urban",
    "detected_at": "2026-07-14T00:02:11+00:00", "confirmed_at": "2026-07-14T00:03:00+00:00",
    "acknowledged_at": None, "etr": "2026-07-14T03:00:00+00:00", "restored_at": None,
    "closed_at": None, "cause": None, "parent_incident_id": None, "merged_into": None,
    "crew_id": "CREW-7", "arrived_at": None, "customers_affected": 112, "customers_out": 112,
    "etr_slips": 0, "sla": {"acknowledge": "met", "on_site": "on_track"}, "version": 4,
}  # fmt: skip


class Incident(BaseModel):
    """An incident snapshot (DESIGN section 3) with its ``version`` (the ETag)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [INCIDENT_EXAMPLE]})

    id: str
    kind: str = Field(description="outage | voltage | planned")
    status: str
    feeder_id: str
    device_id: str | None = None
    transformer_id: str | None = None
    customer_id: str | None = None
    area: str
    detected_at: datetime
    confirmed_at: datetime | None = None
    etr: datetime | None = None
    restored_at: datetime | None = None
    cause: str | None = None
    parent_incident_id: str | None = None
    customers_affected: int
    customers_out: int
    sla: dict[str, Any] = Field(default_factory=dict)
    version: int


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: datetime
    actor: str
    type: str
    detail: str


class EtrEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: datetime
    etr: datetime
    actor: str
    reason: str


class IncidentDetail(Incident):
    """The snapshot plus timeline, ETR history, SLA and satisfaction impact."""

    timeline: list[TimelineEntry]
    etr_history: list[EtrEntry]
    impact: dict[str, Any] | None = None


class AffectedCustomer(BaseModel):
    model_config = ConfigDict(extra="allow")

    customer_id: str
    incident_id: str | None = Field(description="Who owns the interruption now")
    start: datetime | None = None
    start_source: str | None = None
    end: datetime | None = None
    end_source: str | None = None
    unverified: bool | None = None
    momentary: bool | None = None


def _body(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class AcknowledgeBody(BaseModel):
    model_config = _body({})


class CrewBody(BaseModel):
    model_config = _body({"crew_id": "CREW-7"})
    crew_id: str = Field(min_length=1, max_length=64)


class ArrivedBody(BaseModel):
    model_config = _body({"at": "2026-07-14T00:40:00+08:00"})
    at: AwareDatetime | None = Field(default=None, description="Default: now")


class EtrBody(BaseModel):
    model_config = _body({"etr": "2026-07-14T03:00:00+08:00", "reason": "pole replacement"})
    etr: AwareDatetime
    reason: str | None = Field(default=None, max_length=500)


class RestoreBody(BaseModel):
    model_config = _body({"customers": ["C000001", "C000002"]})
    at: AwareDatetime | None = Field(default=None, description="Default: now")
    customers: list[str] | None = Field(default=None, max_length=100_000,
                                        description="Only these customers")  # fmt: skip
    points: list[str] | None = Field(default=None, max_length=10_000,
                                     description="Devices / transformers re-energised")  # fmt: skip


class CloseBody(BaseModel):
    model_config = _body({"cause": "vegetation"})
    cause: str = Field(min_length=1, max_length=100)


class CancelBody(BaseModel):
    model_config = _body({"reason": "false alarm: meter firmware"})
    reason: str = Field(min_length=1, max_length=500)


class MergeBody(BaseModel):
    model_config = _body({"into": "INC-F01-0002"})
    into: str = Field(min_length=1, max_length=100)


class NoteBody(BaseModel):
    model_config = _body({"text": "Crew reports a fallen tree across the line."})
    text: str = Field(min_length=1, max_length=10_000)


class SplitBody(BaseModel):
    model_config = _body({"customers": ["C000001"]})
    customers: list[str] = Field(min_length=1, max_length=100_000)
