"""The SLA clock of DESIGN section 7: deadlines, statuses and exactly-once SLA events.

Pure: every function takes ``now`` (from the injected Clock) instead of reading the time.

Targets and their start/completion timestamps:

============================  =====================  ===================  ================
target                        starts at              completed at         kinds
============================  =====================  ===================  ================
``acknowledge``               detected_at            acknowledged_at      outage, voltage
``on_site``                   detected_at            crew_arrived_at      outage
``restore_after_arrival``     crew_arrived_at        restored_at          outage
``restore_overall``           detected_at            restored_at          outage
``first_notice``              detected_at            first_notice_at      outage
``planned_notice``            scheduled_at           planned_notice_at    planned
============================  =====================  ===================  ================

``planned_notice`` is due ``planned_notice`` (7 days) before ``planned_start``, or
``temporary_notice`` (24 h) before it for temporary maintenance. A target whose start has
not happened is absent. Boundaries: completion at or before ``due_at`` is ``met``; without
completion the target is ``breached`` from ``due_at`` on and ``at_risk`` from ``at_risk_at``
(start + 80 % of the allowed time) on. A target still open when the incident ended another
way (momentary, cancelled, merged: ``ended_at``) before its due time is dropped: nobody
owes it any more (one whose due time had passed stays ``breached``).

Exactly-once events: :func:`deadline_rows` gives the durable rows (one per incident and
target); :func:`due_events` says which ``sla_at_risk`` / ``sla_breached`` events are owed at
``now`` judging only by the rows' emitted flags; the caller writes the lifecycle event and
sets the flag (:func:`mark_emitted`) in one transaction. After a restart the flags are read
back, so nothing is emitted twice and nothing owed is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

Target = Literal[
    "acknowledge",
    "on_site",
    "restore_after_arrival",
    "restore_overall",
    "first_notice",
    "planned_notice",
]
TARGETS: tuple[Target, ...] = (
    "acknowledge",
    "on_site",
    "restore_after_arrival",
    "restore_overall",
    "first_notice",
    "planned_notice",
)
Status = Literal["on_track", "at_risk", "met", "breached"]
SlaEventType = Literal["sla_at_risk", "sla_breached"]
IncidentKind = Literal["outage", "voltage", "planned"]


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """The allowed durations for one area (build with ``policy_rules.sla_targets``)."""

    acknowledge: timedelta = timedelta(minutes=5)
    on_site: timedelta = timedelta(minutes=45)
    restore_after_arrival: timedelta = timedelta(hours=3)
    restore_overall: timedelta = timedelta(hours=3, minutes=45)
    first_notice: timedelta = timedelta(minutes=15)
    planned_notice: timedelta = timedelta(days=7)
    temporary_notice: timedelta = timedelta(hours=24)
    at_risk_fraction: float = 0.8


@dataclass(frozen=True, slots=True)
class IncidentTimes:
    """The timestamps of one incident that the SLA targets depend on (all UTC-aware)."""

    kind: IncidentKind = "outage"
    detected_at: datetime | None = None
    acknowledged_at: datetime | None = None
    crew_arrived_at: datetime | None = None
    restored_at: datetime | None = None
    first_notice_at: datetime | None = None
    ended_at: datetime | None = None  # momentary / cancelled / merged
    scheduled_at: datetime | None = None  # planned: when the outage was put in the plan
    planned_start: datetime | None = None
    planned_notice_at: datetime | None = None
    temporary: bool = False  # planned: temporary maintenance (24 h notice)


@dataclass(frozen=True, slots=True)
class TargetState:
    """One target of one incident evaluated at some ``now``."""

    target: Target
    started_at: datetime
    at_risk_at: datetime
    due_at: datetime
    completed_at: datetime | None
    status: Status


@dataclass(frozen=True, slots=True)
class DeadlineRow:
    """The durable deadline of one (incident, target); the flags make emission exactly-once."""

    incident_id: str
    target: Target
    at_risk_at: datetime
    due_at: datetime
    at_risk_emitted: bool = False
    breached_emitted: bool = False
    completed: bool = False  # met (or dropped): nothing more to emit


@dataclass(frozen=True, slots=True)
class SlaEvent:
    """An ``sla_at_risk`` or ``sla_breached`` event owed for one (incident, target)."""

    incident_id: str
    target: Target
    type: SlaEventType
    occurred_at: datetime  # the deadline that passed, not the time it was noticed
    due_at: datetime


_OUTAGE_SPANS: tuple[tuple[Target, str, str], ...] = (
    ("acknowledge", "detected_at", "acknowledged_at"),
    ("on_site", "detected_at", "crew_arrived_at"),
    ("restore_after_arrival", "crew_arrived_at", "restored_at"),
    ("restore_overall", "detected_at", "restored_at"),
    ("first_notice", "detected_at", "first_notice_at"),
)
_VOLTAGE_SPANS = _OUTAGE_SPANS[:1]


def evaluate(times: IncidentTimes, targets: SlaTargets, now: datetime) -> list[TargetState]:
    """Every started target of an incident with its deadlines and status at ``now``."""
    states: list[TargetState] = []
    for target, start, due, completed in _spans(times, targets):
        at_risk = start + (due - start) * targets.at_risk_fraction
        if completed is not None:
            status: Status = "met" if completed <= due else "breached"
        elif times.ended_at is not None and times.ended_at < due:
            continue
        elif now >= due:
            status = "breached"
        elif now >= at_risk:
            status = "at_risk"
        else:
            status = "on_track"
        states.append(TargetState(target, start, at_risk, due, completed, status))
    return states


def sla_summary(times: IncidentTimes, targets: SlaTargets, now: datetime) -> dict[str, Status]:
    """``{target: status}`` for the incident snapshot's ``sla`` field."""
    return {s.target: s.status for s in evaluate(times, targets, now)}


def next_deadline(times: IncidentTimes, targets: SlaTargets, now: datetime) -> datetime | None:
    """The earliest at-risk or due instant after ``now`` of a target not yet completed."""
    upcoming = [
        instant
        for s in evaluate(times, targets, now)
        if s.completed_at is None
        for instant in (s.at_risk_at, s.due_at)
        if instant > now
    ]
    return min(upcoming, default=None)


def restore_breach_minutes(interruption_min: float, targets: SlaTargets) -> float:
    """Minutes a customer's interruption ran past the restore-overall commitment (impact's
    ``breach``; 0 when within it)."""
    return max(0.0, interruption_min - targets.restore_overall.total_seconds() / 60.0)


def deadline_rows(incident_id: str, times: IncidentTimes, targets: SlaTargets) -> list[DeadlineRow]:
    """Fresh durable rows for an incident's started targets (flags unset; see :func:`refresh`)."""
    rows: list[DeadlineRow] = []
    for target, start, due, completed in _spans(times, targets):
        at_risk = start + (due - start) * targets.at_risk_fraction
        done = (completed is not None and completed <= due) or (
            completed is None and times.ended_at is not None and times.ended_at < due
        )
        rows.append(DeadlineRow(incident_id, target, at_risk, due, completed=done))
    return rows


def refresh(existing: DeadlineRow | None, computed: DeadlineRow) -> DeadlineRow:
    """Merge a recomputed row into the stored one, keeping the emitted flags.

    Flags are kept even when a deadline moved (a corrected arrival time), because each event
    is owed at most once per incident and target.
    """
    if existing is None:
        return computed
    return replace(
        computed,
        at_risk_emitted=existing.at_risk_emitted,
        breached_emitted=existing.breached_emitted,
    )


def due_events(rows: Iterable[DeadlineRow], now: datetime) -> list[SlaEvent]:
    """The SLA events owed at ``now``, in deadline order.

    A completed row owes nothing. When the service was down past both deadlines of a row,
    both events are owed, at-risk first.
    """
    events: list[SlaEvent] = []
    for row in rows:
        if row.completed:
            continue
        if not row.at_risk_emitted and now >= row.at_risk_at:
            events.append(
                SlaEvent(row.incident_id, row.target, "sla_at_risk", row.at_risk_at, row.due_at)
            )
        if not row.breached_emitted and now >= row.due_at:
            events.append(
                SlaEvent(row.incident_id, row.target, "sla_breached", row.due_at, row.due_at)
            )
    events.sort(key=lambda e: (e.occurred_at, e.type != "sla_at_risk", e.incident_id))
    return events


def mark_emitted(row: DeadlineRow, event: SlaEvent) -> DeadlineRow:
    """The row with the flag of ``event`` set (store it with the event, in one transaction)."""
    if (row.incident_id, row.target) != (event.incident_id, event.target):
        raise ValueError("event does not belong to this deadline row")
    if event.type == "sla_at_risk":
        return replace(row, at_risk_emitted=True)
    return replace(row, breached_emitted=True)


def next_wakeup(rows: Iterable[DeadlineRow]) -> datetime | None:
    """The earliest instant at which :func:`due_events` will owe something new."""
    instants: list[datetime] = []
    for row in rows:
        if row.completed:
            continue
        if not row.at_risk_emitted:
            instants.append(row.at_risk_at)
        if not row.breached_emitted:
            instants.append(row.due_at)
    return min(instants, default=None)


def _spans(
    times: IncidentTimes, targets: SlaTargets
) -> Sequence[tuple[Target, datetime, datetime, datetime | None]]:
    out: list[tuple[Target, datetime, datetime, datetime | None]] = []
    if times.kind == "planned":
        if times.planned_start is not None:
            lead = targets.temporary_notice if times.temporary else targets.planned_notice
            due = times.planned_start - lead
            # Scheduled after its own notice deadline: the clock starts already breached.
            start = min(times.scheduled_at or due, due)
            out.append(("planned_notice", start, due, times.planned_notice_at))
        return out
    spans = _OUTAGE_SPANS if times.kind == "outage" else _VOLTAGE_SPANS
    for target, start_field, done_field in spans:
        start = getattr(times, start_field)
        if start is None:
            continue
        due = start + getattr(targets, target)
        out.append((target, start, due, getattr(times, done_field)))
    return out
