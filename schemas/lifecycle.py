"""Incident lifecycle events on ``incidents.lifecycle.v1`` and the incident snapshot."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas._base import Area, Id, Timestamp, WireModel

IncidentKind = Literal["outage", "voltage", "planned"]
IncidentStatus = Literal[
    # outage
    "detected",
    "confirmed",
    "dispatched",
    "on_site",
    "restored",
    "closed",
    "momentary",
    "merged",
    "cancelled",
    # voltage (detected, confirmed, closed shared)
    "resolved",
    # planned
    "scheduled",
    "in_progress",
    "completed",
]
SlaStatus = Literal["on_track", "at_risk", "met", "breached"]
LifecycleType = Literal[
    "opened",
    "confirmed",
    "scope_changed",
    "merged",
    "etr_set",
    "crew_assigned",
    "crew_arrived",
    "partially_restored",
    "restored",
    "closed",
    "cancelled",
    "momentary",
    "sla_at_risk",
    "sla_breached",
    "voltage_opened",
    "voltage_resolved",
    "planned_scheduled",
    "planned_started",
    "planned_completed",
]
Count = Annotated[int, Field(ge=0)]


class IncidentSnapshot(WireModel):
    """The incident as it stands after a lifecycle event.

    The outage point is exactly one of device_id, transformer_id or customer_id (a
    single-customer outage); the other two are null. Every listed field must be present.
    """

    id: Id
    kind: IncidentKind
    status: IncidentStatus
    feeder_id: Id
    device_id: Id | None
    transformer_id: Id | None
    customer_id: Id | None
    area: Area
    detected_at: Timestamp
    confirmed_at: Timestamp | None
    etr: Timestamp | None
    restored_at: Timestamp | None
    customers_affected: Count
    customers_out: Count
    cause: str | None
    parent_incident_id: Id | None
    sla: dict[str, SlaStatus]  # target name (acknowledge, crew_on_site, restore, ...) -> status
    # optional extras
    crew_id: Id | None = None
    closed_at: Timestamp | None = None
    merged_into: Id | None = None
    acknowledged_at: Timestamp | None = None
    arrived_at: Timestamp | None = None
    etr_slips: Count | None = None
    impact_total: Annotated[float, Field(ge=0)] | None = None


class CustomerAdded(WireModel):
    """A customer joining the incident, with the start of their interruption."""

    customer_id: Id
    interrupted_at: Timestamp | None = None
    moved_from: Id | None = None  # the incident the interruption came from (nested/merged)
    reported: bool | None = None  # the customer reported the problem (voltage)


class CustomerRestored(WireModel):
    """A customer whose interruption ended; ``verified`` false means the restore was only
    inferred and must not be told to the customer yet."""

    customer_id: Id
    restored_at: Timestamp | None = None
    source: Literal["meter", "call", "device", "operator", "inferred"] | None = None
    verified: bool = True


class LifecycleEvent(WireModel):
    event_id: Id  # "<incident_id>:<seq>"
    incident_id: Id
    seq: Count  # per incident, increases by one with no gaps
    type: LifecycleType
    occurred_at: Timestamp
    actor: Annotated[str, Field(min_length=1)]
    incident: IncidentSnapshot
    customers_added: list[CustomerAdded] = []
    customers_restored: list[CustomerRestored] = []
