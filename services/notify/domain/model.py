"""Notify's view of the world: lifecycle events as it reads them, jobs it creates.

Pure values. :class:`LifecycleEvent` is parsed from the ``incidents.lifecycle.v1`` JSON
(DESIGN section 3). Entries of ``customers_added`` / ``customers_restored`` may be plain
customer ids or objects; the object form carries what notify needs beyond the id:

``customers_added`` entry::

    {"customer_id": "C000001",
     "interrupted_at": "<RFC 3339>",   # the customer's own interruption start (optional;
                                       #  default: the incident's detected_at)
     "moved_from": "<incident id>",    # set when the customer was moved here from a parent
                                       #  (nested outage) or an absorbed incident (merge)
     "reported": true}                 # the customer reported this problem (voltage)

``customers_restored`` entry::

    {"customer_id": "C000001",
     "restored_at": "<RFC 3339>",      # default: the event's occurred_at
     "source": "meter"|"call"|"device"|"operator"|"inferred",
     "verified": false}                # default: source != "inferred"

A restore with ``verified: false`` (restored only by inference, DESIGN section 5.6) gets
no ``restored`` message. The incidents service confirms it after the nested check by
listing the customer again in ``customers_restored`` of a later event of the same incident
with ``verified: true``; customers moved into a nested incident are simply not listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

Stage = Literal[
    "outage_detected",
    "etr_set",
    "etr_changed",
    "crew_on_site",
    "restored",
    "planned_notice",
    "voltage_acknowledged",
    "survey",
]
STAGES: tuple[Stage, ...] = (
    "outage_detected",
    "etr_set",
    "etr_changed",
    "crew_on_site",
    "restored",
    "planned_notice",
    "voltage_acknowledged",
    "survey",
)
# Incident statuses after which nothing more is said about an outage that never was.
VOID_STATUSES = frozenset({"momentary", "cancelled"})


class EventFormatError(ValueError):
    """A lifecycle event lacks a field notify needs; ``code`` is ``schema``."""

    code = "schema"


def parse_time(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp (``None`` stays ``None``); naive times are rejected."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise EventFormatError(f"timestamp without offset: {value!r}")
    return parsed


@dataclass(frozen=True, slots=True)
class CustomerEntry:
    """One customer of ``customers_added`` or ``customers_restored``."""

    customer_id: str
    at: datetime | None = None
    source: str | None = None
    verified: bool = True
    moved_from: str | None = None
    reported: bool = False

    @classmethod
    def parse(cls, raw: Any, *, restored: bool) -> CustomerEntry:
        """Read a plain id or the object form described in the module docstring."""
        if isinstance(raw, str):
            return cls(customer_id=raw)
        if not isinstance(raw, Mapping) or not raw.get("customer_id"):
            raise EventFormatError(f"customer entry needs customer_id: {raw!r}")
        source = raw.get("source")
        at = parse_time(raw.get("restored_at" if restored else "interrupted_at"))
        verified = raw.get("verified")
        return cls(
            customer_id=str(raw["customer_id"]),
            at=at,
            source=source,
            verified=bool(verified) if verified is not None else source != "inferred",
            moved_from=raw.get("moved_from"),
            reported=bool(raw.get("reported", False)),
        )


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """An ``incidents.lifecycle.v1`` event; ``incident`` is the raw snapshot."""

    event_id: str
    incident_id: str
    seq: int
    type: str
    occurred_at: datetime
    incident: Mapping[str, Any]
    customers_added: tuple[CustomerEntry, ...] = ()
    customers_restored: tuple[CustomerEntry, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LifecycleEvent:
        """Parse the wire JSON (already decoded); raises :class:`EventFormatError`."""
        try:
            occurred_at = parse_time(raw["occurred_at"])
            assert occurred_at is not None
            return cls(
                event_id=str(raw["event_id"]),
                incident_id=str(raw["incident_id"]),
                seq=int(raw["seq"]),
                type=str(raw["type"]),
                occurred_at=occurred_at,
                incident=dict(raw.get("incident") or {}),
                customers_added=tuple(
                    CustomerEntry.parse(c, restored=False) for c in raw.get("customers_added", ())
                ),
                customers_restored=tuple(
                    CustomerEntry.parse(c, restored=True) for c in raw.get("customers_restored", ())
                ),
            )
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            if isinstance(exc, EventFormatError):
                raise
            raise EventFormatError(f"invalid lifecycle event: {exc!r}") from exc


@dataclass(slots=True)
class IncidentInfo:
    """What notify keeps of an incident: its latest snapshot fields and its links."""

    id: str
    kind: str = "outage"
    status: str = "detected"
    detected_at: datetime | None = None
    etr: datetime | None = None
    parent_incident_id: str | None = None
    merged_into: str | None = None
    area: str | None = None
    cause: str | None = None
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    last_seq: int = 0

    @property
    def void(self) -> bool:
        """True when the incident ended as momentary or was cancelled (a false alarm)."""
        return self.status in VOID_STATUSES


@dataclass(slots=True)
class Interruption:
    """One customer's interruption as seen through one incident."""

    incident_id: str
    customer_id: str
    started_at: datetime
    restored_at: datetime | None = None
    restore_verified: bool = False
    moved_from: str | None = None
    moved_to: str | None = None  # the customer now belongs to a nested / surviving incident
    reported: bool = False

    @property
    def out(self) -> bool:
        """Out in this incident (not restored, even by inference, and not moved away)."""
        return self.restored_at is None and self.moved_to is None

    def out_at(self, at: datetime | None) -> bool:
        """Out in this incident at ``at`` (None: now, as far as known): a restore stamped
        later than ``at`` has not happened yet then."""
        if self.moved_to is not None:
            return False
        return self.restored_at is None or (at is not None and self.restored_at > at)


class JobKey(NamedTuple):
    """The idempotency key of a notification job (DESIGN section 4). A named tuple: built
    and hashed in C, several times cheaper than a frozen dataclass for the hundreds of
    thousands of jobs a storm plans."""

    incident_id: str
    customer_id: str
    stage: Stage
    revision: int


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A notification to send to one customer, not before ``due_at``.

    ``revision`` is 0 except for repeatable stages: ``etr_changed`` uses the ``seq`` of the
    event that moved the ETR and ``planned_notice`` uses ``seq * 100 + days_before``.
    ``payload`` holds what the template needs that may change later (e.g. the ETR told).
    """

    incident_id: str
    customer_id: str
    stage: Stage
    revision: int
    due_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> JobKey:
        """The idempotency key ``(incident_id, customer_id, stage, revision)``."""
        return JobKey(self.incident_id, self.customer_id, self.stage, self.revision)
