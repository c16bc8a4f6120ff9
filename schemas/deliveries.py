"""Notification delivery outcomes published by notify on ``notify.deliveries.v1``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas._base import Channel, Id, Timestamp, WireModel

NotifyStage = Literal[
    "outage_detected",
    "etr_set",
    "etr_changed",
    "crew_on_site",
    "restored",
    "planned_notice",
    "voltage_acknowledged",
    "survey",
]


class Delivery(WireModel):
    customer_id: Id
    incident_id: Id
    job_id: Id
    stage: NotifyStage
    channel: Channel
    status: Literal["sent", "failed"]
    attempts: Annotated[int, Field(ge=1)]
    occurred_at: Timestamp
    error: str | None = None
