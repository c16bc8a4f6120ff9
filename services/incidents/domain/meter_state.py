"""Plain state the correlator keeps per customer and device, its input and its export.

Everything here is a plain dataclass so the persistence layer can store it in PostgreSQL and
rebuild a feeder's correlator from it after a restart or a rebalance (DESIGN section 13).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .model import EvidenceSource, Incident

MeterStatus = Literal["ON", "OFF", "UNKNOWN"]

OFF_KINDS = frozenset({"power_off", "call_no_power", "call_still_out"})
OUTAGE_KINDS = OFF_KINDS | {"power_on", "device_open", "device_close"}


@dataclass(frozen=True, slots=True)
class SignalIn:
    """One ``grid.signals.v1`` message, as the correlator needs it (the adapter maps to it).

    ``customer_id`` is filled by ingest for meter and customer signals; ``meter_id`` is used
    when it is missing. ``data`` carries e.g. ``{"lockout": true}`` for device events.
    """

    signal_id: str
    kind: str
    feeder_id: str
    occurred_at: datetime
    source: str = "meter"
    device_id: str | None = None
    transformer_id: str | None = None
    meter_id: str | None = None
    customer_id: str | None = None
    received_at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CustomerState:
    """ON / OFF(since) / UNKNOWN for one customer, plus what late evidence must respect.

    ``since`` is the start of the current state (earliest evidence of it), ``at`` the latest
    evidence seen; ``last_start``/``last_end`` bound the customer's last finished
    interruption, inside which a late power_off reopens nothing.
    """

    status: MeterStatus = "UNKNOWN"
    since: datetime | None = None
    at: datetime | None = None
    source: EvidenceSource | None = None
    still_out: bool = False
    presumed: bool = False
    last_start: datetime | None = None
    last_end: datetime | None = None


@dataclass(slots=True)
class DeviceState:
    """Last SCADA state of a device."""

    open: bool
    at: datetime
    lockout: bool = False


@dataclass(slots=True)
class CorrelatorState:
    """Everything needed to rebuild a correlator (for one feeder or several).

    Roll-up counters and point indexes are derived from these on restore.
    """

    customers: dict[str, CustomerState] = field(default_factory=dict)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    holder: dict[str, str] = field(default_factory=dict)  # customer → incident holding them
    dwell_due: dict[str, datetime] = field(default_factory=dict)  # lone OFF customer → due
    confirm_due: dict[str, datetime] = field(default_factory=dict)  # incident → due
    nested_due: dict[str, datetime] = field(default_factory=dict)  # incident → due
    issued_ids: set[str] = field(default_factory=set)
    seen_signal_ids: dict[str, set[str]] = field(default_factory=dict)  # feeder → ids


@dataclass(slots=True)
class Dirty:
    """What changed since the last :meth:`Correlator.take_dirty` (for incremental saves)."""

    customers: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    incidents: set[str] = field(default_factory=set)
