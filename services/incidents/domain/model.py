"""The Incident aggregate, its per-customer interruptions and the lifecycle events it emits.

Cosmicpython style: the aggregate collects pending :class:`Event` objects in ``events``, each
with the next gapless ``seq``; the unit of work writes them to the outbox in the same
transaction as the incident and then clears the list. State changes go through
``lifecycle.py`` (the state machine) and ``correlation.py`` (the rules); this module only holds
data and knows how to record an event and render the snapshot of DESIGN section 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

IncidentKind = Literal["outage", "voltage", "planned"]
EvidenceSource = Literal["meter", "call", "device", "operator", "inferred"]

OUTAGE_STATUSES = (
    "detected", "confirmed", "dispatched", "on_site", "restored", "closed",
    "momentary", "merged", "cancelled",
)  # fmt: skip
EVENT_TYPES = frozenset(
    {
        "opened", "confirmed", "scope_changed", "merged", "etr_set", "crew_assigned",
        "crew_arrived", "partially_restored", "restored", "closed", "cancelled", "momentary",
        "sla_at_risk", "sla_breached", "voltage_opened", "voltage_resolved",
        "planned_scheduled", "planned_started", "planned_completed",
    }
)  # fmt: skip


def iso(value: datetime | None) -> str | None:
    """RFC 3339 text in UTC for a timestamp, or None."""
    return None if value is None else value.astimezone(UTC).isoformat()


@dataclass(slots=True)
class Interruption:
    """One customer's interruption: when it started and ended and where each came from.

    A customer has at most one interruption per incident; a nested or merged incident takes
    the same object over (its start kept), so customer-minutes are never counted twice.
    """

    customer_id: str
    start: datetime
    start_source: EvidenceSource
    end: datetime | None = None
    end_source: EvidenceSource | None = None
    unverified: bool = False

    @property
    def is_open(self) -> bool:
        """True while the customer is still out."""
        return self.end is None

    def minutes(self, until: datetime) -> float:
        """Minutes out, counting an open interruption up to ``until``."""
        end = self.end if self.end is not None else until
        return max(0.0, (end - self.start).total_seconds() / 60.0)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """Who did what to the incident, when and why."""

    at: datetime
    actor: str
    type: str
    detail: str


@dataclass(frozen=True, slots=True)
class EtrChange:
    """One ETR setting, kept for ETR-accuracy reporting."""

    at: datetime
    etr: datetime
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class Event:
    """A lifecycle event (``incidents.lifecycle.v1``) with the snapshot taken when it happened."""

    incident_id: str
    seq: int
    type: str
    occurred_at: datetime
    actor: str
    incident: dict[str, Any]
    customers_added: tuple[str, ...] = ()
    customers_restored: tuple[str, ...] = ()
    # Per-customer detail for notify: when each added customer's interruption started and,
    # for each restored one, when, from what evidence, and whether it may be told (an
    # inferred restore is told only after the nested check confirms it).
    added_detail: tuple[dict[str, Any], ...] = ()
    restored_detail: tuple[dict[str, Any], ...] = ()

    @property
    def event_id(self) -> str:
        """``<incident_id>:<seq>``, unique and stable across re-runs."""
        return f"{self.incident_id}:{self.seq}"

    def to_message(self) -> dict[str, Any]:
        """The wire value of DESIGN section 3."""
        return {
            "event_id": self.event_id,
            "incident_id": self.incident_id,
            "seq": self.seq,
            "type": self.type,
            "occurred_at": iso(self.occurred_at),
            "actor": self.actor,
            "incident": self.incident,
            "customers_added": list(
                self.added_detail or ({"customer_id": c} for c in self.customers_added)
            ),
            "customers_restored": list(
                self.restored_detail or ({"customer_id": c} for c in self.customers_restored)
            ),
        }


@dataclass(slots=True, eq=False)
class Incident:
    """An outage, voltage or planned incident (the aggregate root)."""

    id: str
    kind: IncidentKind
    status: str
    feeder_id: str
    area: str
    detected_at: datetime
    device_id: str | None = None
    transformer_id: str | None = None
    customer_id: str | None = None
    confirmed_at: datetime | None = None
    acknowledged_at: datetime | None = None
    etr: datetime | None = None
    restored_at: datetime | None = None
    closed_at: datetime | None = None
    cause: str | None = None
    parent_incident_id: str | None = None
    merged_into: str | None = None
    crew_id: str | None = None
    arrived_at: datetime | None = None
    customers_affected: set[str] = field(default_factory=set)
    interruptions: dict[str, Interruption] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    etr_history: list[EtrChange] = field(default_factory=list)
    etr_slips: int = 0
    sla: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    # open interruptions, kept incrementally so a storm never rescans thousands of customers
    out_count: int = 0
    events: list[Event] = field(default_factory=list)

    # --- derived --------------------------------------------------------------------------
    @property
    def point(self) -> str:
        """The outage point id: the device, the transformer or the one customer."""
        return self.device_id or self.transformer_id or self.customer_id or ""

    def customers_out(self) -> set[str]:
        """Customers of this incident whose interruption is still open."""
        return {c for c, i in self.interruptions.items() if i.end is None}

    def customer_minutes(self, until: datetime) -> float:
        """Customer-minutes of the interruptions this incident owns (open ones up to ``until``)."""
        # summed as timedeltas in one loop: called on every save of a storm-sized incident
        total = timedelta(0)
        for i in self.interruptions.values():
            end = until if i.end is None else i.end
            if end > i.start:
                total += end - i.start
        return total.total_seconds() / 60.0

    def snapshot(self) -> dict[str, Any]:
        """The lifecycle snapshot (DESIGN section 3); customer sets are given as counts.

        The customer ids travel in the events' ``customers_added`` / ``customers_restored``
        so a 5,000-customer incident does not copy its whole list into every event.
        """
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "feeder_id": self.feeder_id,
            "device_id": self.device_id,
            "transformer_id": self.transformer_id,
            "customer_id": self.customer_id,
            "area": self.area,
            "detected_at": iso(self.detected_at),
            "confirmed_at": iso(self.confirmed_at),
            "acknowledged_at": iso(self.acknowledged_at),
            "etr": iso(self.etr),
            "restored_at": iso(self.restored_at),
            "closed_at": iso(self.closed_at),
            "cause": self.cause,
            "parent_incident_id": self.parent_incident_id,
            "merged_into": self.merged_into,
            "crew_id": self.crew_id,
            "arrived_at": iso(self.arrived_at),
            "customers_affected": len(self.customers_affected),
            "customers_out": self.out_count,
            "etr_slips": self.etr_slips,
            "sla": dict(self.sla),
        }

    # --- recording ------------------------------------------------------------------------
    def note(self, at: datetime, actor: str, type_: str, detail: str) -> None:
        """Append a timeline entry without emitting an event."""
        self.timeline.append(TimelineEntry(at, actor, type_, detail))

    def record(
        self,
        type_: str,
        at: datetime,
        actor: str,
        detail: str,
        added: Iterable[str] = (),
        restored: Iterable[str] = (),
        *,
        confirmed: bool = False,
        reported: Iterable[str] = (),
        moved_from: str | None = None,
    ) -> Event:
        """Append to the timeline and emit an event with the next gapless ``seq``.

        ``confirmed`` marks the restored customers as verified even when their restore was
        inferred (the nested check found them no longer dark). ``reported`` marks the added
        customers who reported the problem themselves (``"reported": true``: notify
        acknowledges a voltage report to them). ``moved_from`` names the incident the added
        customers' interruptions came from (a merge), so notify links the two at once."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown lifecycle event type {type_!r}")
        self.timeline.append(TimelineEntry(at, actor, type_, detail))
        self.seq += 1
        added_ids, restored_ids = tuple(sorted(added)), tuple(sorted(restored))
        reporters = frozenset(reported)
        event = Event(
            self.id, self.seq, type_, at, actor, self.snapshot(), added_ids, restored_ids,
            tuple(self._added_entry(c, c in reporters, moved_from) for c in added_ids),
            tuple(self._restored_entry(c, confirmed) for c in restored_ids),
        )  # fmt: skip
        self.events.append(event)
        return event

    def _added_entry(
        self, customer_id: str, reported: bool, moved_from: str | None
    ) -> dict[str, Any]:
        intr = self.interruptions.get(customer_id)
        entry: dict[str, Any] = {
            "customer_id": customer_id, "interrupted_at": iso(intr.start if intr else None),
        }  # fmt: skip
        if reported:  # only then: outage events keep their shape
            entry["reported"] = True
        if moved_from is not None:
            entry["moved_from"] = moved_from
        return entry

    def _restored_entry(self, customer_id: str, confirmed: bool) -> dict[str, Any]:
        intr = self.interruptions.get(customer_id)
        if intr is None:
            return {"customer_id": customer_id, "verified": confirmed}
        return {
            "customer_id": customer_id,
            "restored_at": iso(intr.end),
            "source": intr.end_source,
            "verified": confirmed or not intr.unverified,
        }

    def drain_events(self) -> list[Event]:
        """Hand over the pending events (for the outbox) and clear them."""
        events, self.events = self.events, []
        return events

    # --- interruptions (bookkeeping only; rules decide when) -------------------------------
    def add_interruption(self, interruption: Interruption) -> None:
        """Take an interruption over (new, nested or merged), keeping its original start."""
        old = self.interruptions.get(interruption.customer_id)
        if old is not None and old.end is None:
            self.out_count -= 1
        self.interruptions[interruption.customer_id] = interruption
        self.customers_affected.add(interruption.customer_id)
        if interruption.end is None:
            self.out_count += 1

    def remove_interruption(self, customer_id: str) -> Interruption | None:
        """Give an interruption away (to a nested or surviving incident)."""
        interruption = self.interruptions.pop(customer_id, None)
        if interruption is not None and interruption.end is None:
            self.out_count -= 1
        return interruption

    def end_interruption(
        self, customer_id: str, at: datetime, source: EvidenceSource, unverified: bool = False
    ) -> bool:
        """End one customer's open interruption at ``at``; False when there is none."""
        interruption = self.interruptions.get(customer_id)
        if interruption is None or interruption.end is not None:
            return False
        interruption.end = max(at, interruption.start)
        interruption.end_source = source
        interruption.unverified = unverified
        self.out_count -= 1
        return True

    def reopen_interruption(self, customer_id: str) -> None:
        """Clear an interruption's end (its restoration turned out to be wrong)."""
        interruption = self.interruptions[customer_id]
        if interruption.end is not None:
            interruption.end = None
            interruption.end_source = None
            interruption.unverified = False
            self.out_count += 1
