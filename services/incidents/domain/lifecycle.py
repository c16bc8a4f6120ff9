"""The incident state machines of DESIGN section 6 and the transitions rules and operators use.

Every function checks the transition table of the incident's kind, appends to the timeline
(who, when, why) and emits the lifecycle event; an invalid one raises
:class:`InvalidTransition` with the allowed next states (HTTP 409 at the API).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .model import EtrChange, Event, EvidenceSource, Incident, IncidentKind, Interruption

OUTAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    "detected": frozenset(
        {"confirmed", "dispatched", "restored", "momentary", "merged", "cancelled"}
    ),
    "confirmed": frozenset({"dispatched", "restored", "momentary", "merged", "cancelled"}),
    "dispatched": frozenset({"dispatched", "on_site", "restored", "merged", "cancelled"}),
    "on_site": frozenset({"restored", "merged", "cancelled"}),
    "restored": frozenset({"closed"}),
    "closed": frozenset(),
    "momentary": frozenset(),
    "merged": frozenset(),
    "cancelled": frozenset(),
}
VOLTAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    "detected": frozenset({"confirmed", "resolved", "cancelled"}),
    "confirmed": frozenset({"resolved", "cancelled"}),
    "resolved": frozenset({"closed"}),
    "closed": frozenset(),
    "cancelled": frozenset(),
}
PLANNED_TRANSITIONS: dict[str, frozenset[str]] = {
    "scheduled": frozenset({"in_progress", "cancelled"}),
    "in_progress": frozenset({"completed"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "outage": OUTAGE_TRANSITIONS,
    "voltage": VOLTAGE_TRANSITIONS,
    "planned": PLANNED_TRANSITIONS,
}
INITIAL_STATUS: dict[str, str] = {
    "outage": "detected",
    "voltage": "detected",
    "planned": "scheduled",
}
OPENED_EVENT: dict[str, str] = {
    "outage": "opened", "voltage": "voltage_opened", "planned": "planned_scheduled",
}  # fmt: skip
# the lifecycle event type announcing arrival in a status, per kind
STATUS_EVENT: dict[str, dict[str, str]] = {
    "outage": {
        "confirmed": "confirmed", "dispatched": "crew_assigned", "on_site": "crew_arrived",
        "restored": "restored", "closed": "closed", "momentary": "momentary",
        "merged": "merged", "cancelled": "cancelled",
    },
    "voltage": {
        "confirmed": "confirmed", "resolved": "voltage_resolved", "closed": "closed",
        "cancelled": "cancelled",
    },
    "planned": {
        "in_progress": "planned_started", "completed": "planned_completed",
        "cancelled": "cancelled",
    },
}  # fmt: skip
# states in which the customers are (or may still be) out: ETR and restores are accepted
OPEN_STATUSES = frozenset({"detected", "confirmed", "dispatched", "on_site", "in_progress"})


class InvalidTransition(Exception):
    """A transition the state machine does not allow; ``allowed`` lists the ones it does."""

    code = "invalid_transition"

    def __init__(self, current: str, attempted: str, allowed: Iterable[str]) -> None:
        self.current = current
        self.attempted = attempted
        self.allowed = tuple(sorted(allowed))
        super().__init__(
            f"cannot go from {current!r} to {attempted!r}; allowed: {', '.join(self.allowed)}"
        )


def allowed_transitions(incident: Incident) -> tuple[str, ...]:
    """Statuses the incident may move to next, sorted."""
    return tuple(sorted(TRANSITIONS[incident.kind][incident.status]))


def is_open(incident: Incident) -> bool:
    """True while customers may still be out (not restored, resolved or terminal)."""
    return incident.status in OPEN_STATUSES


def is_terminal(incident: Incident) -> bool:
    """True when no transition is left."""
    return not TRANSITIONS[incident.kind][incident.status]


def check(incident: Incident, to: str) -> None:
    """Raise :class:`InvalidTransition` unless ``incident`` may move to ``to``."""
    allowed = TRANSITIONS[incident.kind][incident.status]
    if to not in allowed:
        raise InvalidTransition(incident.status, to, allowed)


def transition(
    incident: Incident,
    to: str,
    at: datetime,
    actor: str,
    reason: str,
    added: Iterable[str] = (),
    restored: Iterable[str] = (),
) -> Event:
    """Move to ``to`` (checked), record it on the timeline and emit the status's event."""
    check(incident, to)
    incident.status = to
    return incident.record(STATUS_EVENT[incident.kind][to], at, actor, reason, added, restored)


def open_incident(
    incident_id: str,
    kind: IncidentKind,
    feeder_id: str,
    area: str,
    detected_at: datetime,
    actor: str,
    reason: str,
    interruptions: Iterable[Interruption] = (),
    *,
    device_id: str | None = None,
    transformer_id: str | None = None,
    customer_id: str | None = None,
    parent_incident_id: str | None = None,
) -> Incident:
    """Create an incident in its kind's initial status and emit its opening event."""
    incident = Incident(
        id=incident_id, kind=kind, status=INITIAL_STATUS[kind], feeder_id=feeder_id, area=area,
        detected_at=detected_at, device_id=device_id, transformer_id=transformer_id,
        customer_id=customer_id, parent_incident_id=parent_incident_id,
    )  # fmt: skip
    incident.interruptions = {i.customer_id: i for i in interruptions}
    incident.customers_affected = set(incident.interruptions)
    incident.out_count = sum(1 for i in incident.interruptions.values() if i.end is None)
    incident.record(OPENED_EVENT[kind], detected_at, actor, reason, added=incident.interruptions)
    return incident


def confirm(incident: Incident, at: datetime, actor: str, reason: str) -> bool:
    """Rules' confirmation (SCADA, sustained 5 min): detected → confirmed; False if done."""
    if incident.status != "detected":
        return False
    incident.confirmed_at = at
    transition(incident, "confirmed", at, actor, reason)
    return True


def acknowledge(incident: Incident, at: datetime, actor: str, reason: str = "acknowledged") -> None:
    """An operator acknowledges: confirms a detected incident, records who acknowledged."""
    if incident.acknowledged_at is not None or incident.status not in OPEN_STATUSES:
        raise InvalidTransition(incident.status, "acknowledged", allowed_transitions(incident))
    incident.acknowledged_at = at
    if incident.status == "detected":
        incident.confirmed_at = at
        transition(incident, "confirmed", at, actor, reason)
    else:
        incident.note(at, actor, "acknowledged", reason)


def assign_crew(
    incident: Incident, crew_id: str, at: datetime, actor: str, reason: str = ""
) -> None:
    """Dispatch (or re-dispatch) a crew; a detected incident counts as confirmed by it."""
    check(incident, "dispatched")
    if incident.confirmed_at is None:
        incident.confirmed_at = at
    incident.crew_id = crew_id
    transition(incident, "dispatched", at, actor, reason or f"crew {crew_id} assigned")


def arrive(incident: Incident, at: datetime, actor: str, reason: str = "crew on site") -> None:
    """The assigned crew is on site."""
    check(incident, "on_site")
    incident.arrived_at = at
    transition(incident, "on_site", at, actor, reason)


def set_etr(incident: Incident, etr: datetime, at: datetime, actor: str, reason: str = "") -> None:
    """Set the estimated restoration time in any open state; history kept, later = a slip."""
    if incident.status not in OPEN_STATUSES:
        raise InvalidTransition(incident.status, "etr_set", allowed_transitions(incident))
    if incident.etr is not None and etr > incident.etr:
        incident.etr_slips += 1
    incident.etr = etr
    incident.etr_history.append(EtrChange(at, etr, actor, reason))
    incident.record("etr_set", at, actor, reason or f"ETR {etr.isoformat()}")


def restore(
    incident: Incident,
    at: datetime,
    actor: str,
    reason: str,
    customers: Iterable[str] | None = None,
    source: EvidenceSource = "operator",
    unverified: bool = False,
    momentary_s: int | None = None,
) -> list[str]:
    """End the interruptions of ``customers`` (all when None) at ``at``; returns who ended.

    When no customer is left out the incident becomes ``restored`` — or ``momentary`` when
    ``momentary_s`` is given and everyone was back within it of detection (no crew yet).
    Otherwise a ``partially_restored`` event lists the customers just restored.
    """
    if incident.status not in OPEN_STATUSES:
        raise InvalidTransition(incident.status, "restored", allowed_transitions(incident))
    targets = incident.interruptions if customers is None else customers
    ended = [c for c in targets if incident.end_interruption(c, at, source, unverified)]
    if incident.out_count > 0:
        if ended:
            incident.record("partially_restored", at, actor, reason, restored=ended)
        return ended
    ends = [i.end for i in incident.interruptions.values() if i.end is not None]
    incident.restored_at = max([at, *ends]) if customers is None else max(ends, default=at)
    within = (incident.restored_at - incident.detected_at).total_seconds()
    quick = momentary_s is not None and within <= momentary_s
    if quick and "momentary" in TRANSITIONS[incident.kind][incident.status]:
        transition(incident, "momentary", incident.restored_at, actor, reason, restored=ended)
    else:
        transition(incident, "restored", incident.restored_at, actor, reason, restored=ended)
    return ended


def close(incident: Incident, cause: str, at: datetime, actor: str) -> None:
    """Close a restored incident with a cause code."""
    if not cause:
        raise ValueError("closing an incident needs a cause code")
    check(incident, "closed")
    incident.cause = cause
    incident.closed_at = at
    transition(incident, "closed", at, actor, f"cause {cause}")


def cancel(incident: Incident, reason: str, at: datetime, actor: str) -> None:
    """A false alarm: open interruptions end at ``at`` (operator) and the incident is cancelled."""
    check(incident, "cancelled")
    for customer_id in list(incident.interruptions):
        incident.end_interruption(customer_id, at, "operator")
    transition(incident, "cancelled", at, actor, reason)


def merge(incident: Incident, into: Incident, at: datetime, actor: str, reason: str) -> list[str]:
    """``incident`` is absorbed by ``into``: its interruptions move over with their starts.

    Returns the customers new to the survivor (announced there with ``scope_changed``).
    """
    check(incident, "merged")
    if into.id == incident.id or into.status not in OPEN_STATUSES:
        raise InvalidTransition(incident.status, "merged", allowed_transitions(incident))
    moving, kept = incident.interruptions, into.interruptions
    both = moving.keys() & kept.keys()
    for customer_id in both:
        if moving[customer_id].start < kept[customer_id].start:
            # the survivor keeps the customer's original, earlier start
            kept[customer_id].start = moving[customer_id].start
            kept[customer_id].start_source = moving[customer_id].start_source
    # bulk move (C-level dict/set operations): a storm absorbs thousands of customers
    added = [c for c in moving if c not in both]
    still_out = incident.out_count - sum(1 for c in both if moving[c].end is None)
    kept.update({c: moving[c] for c in added})
    into.customers_affected.update(added)
    into.out_count += still_out
    incident.interruptions, incident.out_count = {}, 0
    into.detected_at = min(into.detected_at, incident.detected_at)
    incident.merged_into = into.id
    transition(incident, "merged", at, actor, f"{reason} (into {into.id})")
    into.record(
        "scope_changed", at, actor, f"absorbed {incident.id}", added=added, moved_from=incident.id
    )
    return added


def add_note(incident: Incident, text: str, at: datetime, actor: str) -> None:
    """A free-text note on the timeline."""
    incident.note(at, actor, "note", text)


def split(
    parent: Incident,
    customers: Iterable[str],
    child_id: str,
    at: datetime,
    actor: str,
    reason: str,
    *,
    device_id: str | None = None,
    transformer_id: str | None = None,
    customer_id: str | None = None,
    area: str | None = None,
) -> Incident:
    """Move ``customers`` into a new confirmed child incident (a nested outage).

    Each customer's interruption continues from its original start (reopened when it had
    been ended by inference): one interruption per customer. The parent keeps them in
    ``customers_affected``; the child counts them as its own.
    """
    moved: list[Interruption] = []
    for c in customers:
        interruption = parent.remove_interruption(c)
        if interruption is not None:
            moved.append(interruption)
    for interruption in moved:
        interruption.end, interruption.end_source, interruption.unverified = None, None, False
    detected = min((i.start for i in moved), default=at)
    child = open_incident(
        child_id, parent.kind, parent.feeder_id, area or parent.area, detected, actor,
        f"{reason} (nested in {parent.id})", moved, device_id=device_id,
        transformer_id=transformer_id, customer_id=customer_id, parent_incident_id=parent.id,
    )  # fmt: skip
    confirm(child, at, actor, reason)
    parent.record("scope_changed", at, actor, f"{len(moved)} customers split into {child_id}")
    return child
