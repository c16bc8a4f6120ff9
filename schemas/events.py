"""Raw inputs: AMI meter events, SCADA device events and customer reports (DESIGN section 3)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas._base import Id, Timestamp, WireModel

NonNegative = Annotated[float, Field(ge=0)]


class _MeterEventBase(WireModel):
    event_id: Id
    meter_id: Id
    occurred_at: Timestamp


class LastGasp(_MeterEventBase):
    type: Literal["last_gasp"]


class PowerRestore(_MeterEventBase):
    type: Literal["power_restore"]


class VoltageReading(_MeterEventBase):
    """Interval summary; the reading covers the ``interval_s`` before ``occurred_at``."""

    type: Literal["voltage"]
    interval_s: Annotated[int, Field(gt=0)]
    v_avg: NonNegative
    v_min: NonNegative
    v_max: NonNegative


class Sag(_MeterEventBase):
    type: Literal["sag"]
    magnitude_v: NonNegative
    duration_ms: Annotated[int, Field(ge=0)]


class Swell(_MeterEventBase):
    type: Literal["swell"]
    magnitude_v: NonNegative
    duration_ms: Annotated[int, Field(ge=0)]


class PingResponse(_MeterEventBase):
    type: Literal["ping_response"]
    energized: bool


MeterEvent = Annotated[
    LastGasp | PowerRestore | VoltageReading | Sag | Swell | PingResponse,
    Field(discriminator="type"),
]
METER_EVENT_TYPES: tuple[str, ...] = (
    "last_gasp",
    "power_restore",
    "voltage",
    "sag",
    "swell",
    "ping_response",
)


class DeviceEvent(WireModel):
    event_id: Id
    device_id: Id
    occurred_at: Timestamp
    state: Literal["open", "closed"]
    lockout: bool


ReportChannel = Literal["phone", "app", "wechat", "sms", "web"]
ReportKind = Literal["no_power", "partial_power", "low_voltage", "flicker", "still_out", "survey"]


class CustomerReport(WireModel):
    event_id: Id
    customer_id: Id
    occurred_at: Timestamp
    channel: ReportChannel
    kind: ReportKind
    text: str | None = None
    # A survey answer carries a score; any other report must not (DESIGN section 9).
    score: Annotated[int, Field(ge=1, le=5)] | None = Field(default=None, validate_default=True)
    incident_id: Id | None = None

    @field_validator("score")
    @classmethod
    def _score_only_for_survey(cls, score: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if kind is None:  # kind itself failed validation; that error is reported instead
            return score
        if kind == "survey" and score is None:
            raise PydanticCustomError("score_required", "a survey report needs a score 1..5")
        if kind != "survey" and score is not None:
            raise PydanticCustomError("score_forbidden", "only survey reports carry a score")
        return score
