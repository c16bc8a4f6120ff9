"""Input records of the reports (DESIGN section 11).

The reports are pure computations over these plain values; a persistence adapter reads
them from the incidents schema (PostgreSQL or SQLite) and hands them in. Every timestamp
is timezone-aware. Group attributes (feeder, substation, area) are copied onto each record
so that a report never needs the topology.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

GroupBy = Literal["all", "area", "feeder", "substation"]
GROUP_BYS: tuple[GroupBy, ...] = ("all", "area", "feeder", "substation")


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open reporting window ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("period end must be after its start")

    @property
    def minutes(self) -> float:
        """Length of the period in minutes."""
        return (self.end - self.start).total_seconds() / 60.0

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside ``[start, end)``."""
        return self.start <= moment < self.end

    def as_json(self) -> dict[str, str]:
        """``{"start", "end"}`` as RFC 3339 strings."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer served, with the groups it belongs to."""

    customer_id: str
    feeder_id: str
    substation: str
    area: str


@dataclass(frozen=True, slots=True)
class InterruptionRecord:
    """One customer's interruption in one incident (``end`` None while still out).

    The incidents service keeps one interruption per customer across nested outages, so a
    customer of a parent and a nested incident appears once. ``momentary`` is the service's
    verdict; an interruption of 5 minutes or less is momentary whatever the flag says.
    """

    incident_id: str
    customer_id: str
    start: datetime
    end: datetime | None
    planned: bool
    momentary: bool
    feeder_id: str
    substation: str
    area: str


@dataclass(frozen=True, slots=True)
class MomentaryEvent:
    """One customer's share of one momentary interruption *event* (for MAIFIe).

    Several reclosing operations that end in a momentary are one event; the adapter
    emits one record per (event, customer).
    """

    event_id: str
    customer_id: str
    occurred_at: datetime
    feeder_id: str
    substation: str
    area: str


@dataclass(frozen=True, slots=True)
class SaidiHistory:
    """System daily SAIDI (minutes) before the period, for the Major Event Day threshold.

    ``first_day`` is the first day data exists (days from it onward that are missing from
    ``daily_saidi`` count as zero-SAIDI days); None means the earliest key of the mapping.
    """

    daily_saidi: Mapping[date, float] = field(default_factory=dict)
    first_day: date | None = None


@dataclass(frozen=True, slots=True)
class IncidentSlaRecord:
    """The SLA-relevant timestamps of one incident (DESIGN section 7).

    ``kind`` is outage, voltage or planned. For planned work ``scheduled_start`` is the
    announced start and ``temporary`` marks temporary maintenance (24 h notice, not 7 days).
    """

    incident_id: str
    area: str
    kind: str
    detected_at: datetime
    acknowledged_at: datetime | None = None
    arrived_at: datetime | None = None
    restored_at: datetime | None = None
    first_notice_at: datetime | None = None
    planned_notice_at: datetime | None = None
    scheduled_start: datetime | None = None
    temporary: bool = False
    feeder_id: str | None = None


@dataclass(frozen=True, slots=True)
class VoltageMinutes:
    """Voltage monitoring of one meter over the period (each reading covers its interval)."""

    meter_id: str
    transformer_id: str
    feeder_id: str
    area: str
    minutes_monitored: float
    minutes_out_of_band: float
    substation: str | None = None


@dataclass(frozen=True, slots=True)
class SagSwellCount:
    """How many sags or swells of one IEEE 1159 class one meter saw in the period."""

    meter_id: str
    transformer_id: str
    feeder_id: str
    area: str
    kind: Literal["sag", "swell"]
    category: str
    count: int
    substation: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentImpactRecord:
    """An incident's satisfaction impact (DESIGN section 9): total and component sums."""

    incident_id: str
    area: str
    detected_at: datetime
    impact_total: float
    customers_affected: int
    customer_minutes: float
    components: Mapping[str, float] = field(default_factory=dict)
    feeder_id: str | None = None


@dataclass(frozen=True, slots=True)
class FirstNoticeRecord:
    """Minutes from detection to a customer's first message (None: never notified)."""

    incident_id: str
    customer_id: str
    delay_min: float | None


@dataclass(frozen=True, slots=True)
class EtrErrorRecord:
    """Restoration time minus the ETR in force at restoration, in minutes (late > 0)."""

    incident_id: str
    error_min: float
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """A post-restoration survey answer, score 1..5."""

    incident_id: str
    customer_id: str
    score: int
