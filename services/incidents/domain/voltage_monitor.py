"""Voltage incidents per transformer (DESIGN section 5 point 7).

A transformer with n meters gets a voltage incident when at least ``max(1, ceil(0.3·n))``
meters have two consecutive out-of-band readings, or when a customer's low_voltage report
is confirmed by one out-of-band reading of that customer's meter within an hour of the
report. It resolves once every meter involved (those out of band while it was open, and
the confirming reporters' meters) has two consecutive in-band readings after it opened.

"Consecutive" is judged in event-time order on each meter's recent readings, so readings
may arrive late or out of order; duplicates (same ``event_id``) change nothing. Transition
times are event times: the reading that completed the rule, never the arrival time.

The monitor keeps its own two states (``normal``/``open``); the incident's lifecycle
(detected → confirmed → resolved → closed) belongs to the lifecycle module, which reacts to
:class:`VoltageOpened` and :class:`VoltageResolved`.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from services.incidents.domain.voltage import VoltageBand, VoltageReading


class VoltageState(StrEnum):
    NORMAL = "normal"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class VoltageRules:
    """The voltage rule numbers (build from the policy with ``policy_rules.voltage_rules``)."""

    voltage_fraction: float = 0.3
    consecutive: int = 2
    report_confirm_window: timedelta = timedelta(hours=1)

    def open_threshold(self, n: int) -> int:
        """Meters that must be out of band to open an incident on a transformer of ``n``."""
        # round() drops float noise such as 0.3·10 = 3.0000000000000004 before ceil.
        return max(1, math.ceil(round(self.voltage_fraction * n, 9)))


@dataclass(frozen=True, slots=True)
class LowVoltageReport:
    """A customer's low_voltage report, resolved to the customer's meter."""

    event_id: str
    customer_id: str
    meter_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class VoltageOpened:
    """A transformer's voltage incident opens. ``reporting_customers`` are the reporters
    whose report a reading confirmed (trigger ``report``); ``reporters`` every customer
    with a pending low_voltage report when it opened (all are acknowledged)."""

    transformer_id: str
    occurred_at: datetime
    trigger: Literal["readings", "report"]
    meters: tuple[str, ...]
    reporting_customers: tuple[str, ...]
    reporters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VoltageResolved:
    transformer_id: str
    occurred_at: datetime
    opened_at: datetime
    meters: tuple[str, ...]


VoltageEvent = VoltageOpened | VoltageResolved

# (occurred_at, event_id, in_band), kept sorted per meter
_Entry = tuple[datetime, str, bool]


class VoltageMonitor:
    """The voltage state of one transformer, fed readings and low_voltage reports.

    ``history`` readings per meter are kept; a reading older than all of them when the
    history is full cannot change a trailing run and is ignored. To rebuild after a restart,
    pass the open incident's ``opened_at`` and ``involved`` meters and replay the stored
    readings and reports.
    """

    def __init__(
        self,
        transformer_id: str,
        meter_ids: Iterable[str],
        band: VoltageBand,
        rules: VoltageRules | None = None,
        *,
        opened_at: datetime | None = None,
        involved: Iterable[str] = (),
        resolved_at: datetime | None = None,
        history: int = 8,
    ) -> None:
        self.transformer_id = transformer_id
        self.band = band
        self.rules = rules or VoltageRules()
        self._meters = set(meter_ids)
        self._history = max(history, self.rules.consecutive + 1)
        self._readings: dict[str, list[_Entry]] = {}
        self._reports: dict[str, LowVoltageReport] = {}
        self._opened_at = opened_at
        self._involved = set(involved)
        self._reporters: set[str] = set()
        self._resolved_at = resolved_at

    def clone(self) -> VoltageMonitor:
        """An independent copy (a transaction works on one; the cached one stays as
        committed). What it shares is never changed: band, rules, reading tuples, reports."""
        twin = copy.copy(self)
        twin._meters = set(self._meters)
        twin._readings = {m: list(entries) for m, entries in self._readings.items()}
        twin._reports = dict(self._reports)
        twin._involved = set(self._involved)
        twin._reporters = set(self._reporters)
        return twin

    @property
    def state(self) -> VoltageState:
        """``open`` while the transformer has a voltage incident."""
        return VoltageState.OPEN if self._opened_at is not None else VoltageState.NORMAL

    @property
    def opened_at(self) -> datetime | None:
        """Event time the current incident opened, or None."""
        return self._opened_at

    @property
    def involved_meters(self) -> frozenset[str]:
        """Meters whose in-band readings the current incident waits for."""
        return frozenset(self._involved)

    @property
    def reporting_customers(self) -> frozenset[str]:
        """Customers who reported low voltage for the current incident (to acknowledge)."""
        return frozenset(self._reporters)

    def add_reading(self, reading: VoltageReading) -> list[VoltageEvent]:
        """Apply one voltage reading; returns the transitions it caused (usually none)."""
        self._meters.add(reading.meter_id)
        entries = self._readings.setdefault(reading.meter_id, [])
        entry = (reading.occurred_at, reading.event_id, self.band.contains(reading.v_avg))
        if any(e[1] == reading.event_id for e in entries):
            return []
        if len(entries) >= self._history and entry < entries[0]:
            return []
        bisect.insort(entries, entry)
        del entries[: -self._history]
        return self._evaluate()

    def add_report(self, report: LowVoltageReport) -> list[VoltageEvent]:
        """Apply a customer's low_voltage report; returns the transitions it caused."""
        if report.event_id in self._reports:
            return []
        if self._resolved_at is not None and report.occurred_at <= self._resolved_at:
            return []  # about a problem already resolved
        self._meters.add(report.meter_id)
        self._reports[report.event_id] = report
        if self._opened_at is not None:
            self._reporters.add(report.customer_id)
        return self._evaluate()

    def _evaluate(self) -> list[VoltageEvent]:
        events: list[VoltageEvent] = []
        for _ in range(2):  # a resolution may let a newer incident open at once
            event = self._try_resolve() if self._opened_at is not None else self._try_open()
            if event is None:
                break
            events.append(event)
        return events

    def _try_open(self) -> VoltageOpened | None:
        out_since = {
            m: t for m in self._readings if (t := self._run_since(m, in_band=False)) is not None
        }
        candidates: list[tuple[datetime, VoltageOpened]] = []
        threshold = self.rules.open_threshold(len(self._meters))
        if len(out_since) >= threshold:
            at = sorted(out_since.values())[threshold - 1]
            meters = tuple(sorted(out_since))
            candidates.append((at, VoltageOpened(self.transformer_id, at, "readings", meters, ())))
        confirmed = [(r, t) for r in self._reports.values() if (t := self._confirmation(r))]
        if confirmed:
            at = min(max(r.occurred_at, t) for r, t in confirmed)
            meters = tuple(sorted(set(out_since) | {r.meter_id for r, _ in confirmed}))
            customers = tuple(sorted({r.customer_id for r, _ in confirmed}))
            opened = VoltageOpened(self.transformer_id, at, "report", meters, customers)
            candidates.append((at, opened))
        if not candidates:
            return None
        _, event = min(candidates, key=lambda c: c[0])
        self._opened_at = event.occurred_at
        self._involved = set(event.meters)
        self._reporters = {r.customer_id for r in self._reports.values()}
        return replace(event, reporters=tuple(sorted(self._reporters)))

    def _try_resolve(self) -> VoltageResolved | None:
        opened_at = self._opened_at
        assert opened_at is not None
        for m in self._readings:
            if self._run_since(m, in_band=False) is not None:
                self._involved.add(m)
        in_since = [self._run_since(m, in_band=True) for m in self._involved]
        if not in_since or any(t is None or t <= opened_at for t in in_since):
            return None
        at = max(t for t in in_since if t is not None)
        event = VoltageResolved(self.transformer_id, at, opened_at, tuple(sorted(self._involved)))
        self._opened_at = None
        self._resolved_at = at
        self._involved = set()
        self._reporters = set()
        self._reports = {}
        return event

    def _run_since(self, meter_id: str, *, in_band: bool) -> datetime | None:
        """When the meter's trailing run of in-band (or out-of-band) readings reached
        ``consecutive`` readings, or None when that run is shorter. Runs must begin after
        the last resolution so a resolved problem is not counted again."""
        entries = self._readings.get(meter_id, [])
        run: list[datetime] = []
        for at, _, ok in reversed(entries):
            if ok != in_band or (self._resolved_at is not None and at <= self._resolved_at):
                break
            run.append(at)
        need = self.rules.consecutive
        return run[-need] if len(run) >= need else None

    def _confirmation(self, report: LowVoltageReport) -> datetime | None:
        """Time of the earliest out-of-band reading of the reporter's meter near the report."""
        window = self.rules.report_confirm_window
        for at, _, ok in self._readings.get(report.meter_id, []):
            if self._resolved_at is not None and at <= self._resolved_at:
                continue
            if not ok and abs(at - report.occurred_at) <= window:
                return at
        return None
