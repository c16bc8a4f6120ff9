"""The outage correlator (DESIGN section 5, rules 1–6 and 8): evidence in, lifecycle events out.

One :class:`Correlator` holds, for the feeders it is given, each customer's ON/OFF/UNKNOWN
state, incremental OFF and ON roll-up counters, the SCADA state of devices and the incidents
it still has to watch. :meth:`Correlator.apply` takes one signal at its event time;
:meth:`Correlator.run_due` fires the time-driven rules (single-customer dwell, sustained
confirmation, nested-outage check). Pure: time comes in with the signals and ``now``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.common.topology.model import Topology

from . import lifecycle
from .meter_state import (
    OFF_KINDS,
    OUTAGE_KINDS,
    CorrelatorState,
    CustomerState,
    DeviceState,
    Dirty,
    SignalIn,
)
from .model import Event, EvidenceSource, Incident, Interruption
from .nesting import nested_check
from .rollup import NetworkIndex, Point, RollupTree
from .rules import CorrelationRules


def point_of(incident: Incident) -> Point:
    """The outage point of an incident as a roll-up node."""
    if incident.device_id is not None:
        return ("device", incident.device_id)
    if incident.transformer_id is not None:
        return ("transformer", incident.transformer_id)
    return ("customer", incident.customer_id or "")


@dataclass(frozen=True, slots=True)
class Due:
    """What :meth:`Correlator.run_due` did and when it next needs to run."""

    events: list[Event]
    next_wake: datetime | None


class Correlator:
    """Outage correlation for a set of feeders; rebuildable from :class:`CorrelatorState`."""

    def __init__(
        self,
        topology: Topology,
        rules: CorrelationRules | None = None,
        state: CorrelatorState | None = None,
        actor: str = "correlator",
    ) -> None:
        self.rules = rules or CorrelationRules()
        self.net = NetworkIndex(topology, self.rules)
        self.actor = actor
        self.s = copy.deepcopy(state) if state is not None else CorrelatorState()
        self.off = RollupTree(self.net)
        self.on = RollupTree(self.net)
        self.by_point: dict[Point, str] = {}
        self.dirty = Dirty()
        self._touched: dict[str, Incident] = {}
        for c, st in self.s.customers.items():
            if st.status == "OFF":
                self.off.mark(c)
            elif st.status == "ON":
                self.on.mark(c)
        for inc in self.s.incidents.values():
            if lifecycle.is_open(inc):
                self.by_point[point_of(inc)] = inc.id

    # --- public: input ----------------------------------------------------------------------
    def apply(self, signal: SignalIn) -> list[Event]:
        """Apply one signal at its event time; returns the lifecycle events it caused.

        Kinds other than power_off, power_on, device_open, device_close, call_no_power and
        call_still_out are ignored (voltage and reports go elsewhere). A signal whose
        ``signal_id`` was already applied changes nothing.
        """
        kind = signal.kind
        if kind not in OUTAGE_KINDS:
            return []
        seen = self.s.seen_signal_ids.setdefault(signal.feeder_id, set())
        if signal.signal_id in seen:
            return []
        seen.add(signal.signal_id)
        t = signal.occurred_at
        if kind in OFF_KINDS or kind == "power_on":
            c = signal.customer_id or self.net.topology.customer_by_meter.get(signal.meter_id or "")
            if c is None or c not in self.net.cust_tx:
                return []
            if kind == "power_on":
                self._power_on(c, t)
            else:
                source: EvidenceSource = "meter" if kind == "power_off" else "call"
                self._off(c, t, source, still_out=kind == "call_still_out")
        elif signal.device_id is None or signal.device_id not in self.net.dev_path:
            return []
        elif kind == "device_open":
            self._device_open(signal.device_id, t, bool(signal.data.get("lockout", False)))
        else:
            self._device_close(signal.device_id, t)
        return self._flush()

    def run_due(self, now: datetime) -> Due:
        """Fire the rules due at ``now`` (dwell, confirmation, nested check), in due order."""
        s, rules = self.s, self.rules
        for c, due in sorted(s.dwell_due.items(), key=lambda kv: (kv[1], kv[0])):
            if due > now:
                continue
            del s.dwell_due[c]
            st = s.customers.get(c)
            if st is None or st.status != "OFF" or st.since is None:
                continue
            ready = st.since + timedelta(seconds=rules.single_customer_dwell_s)
            if ready > now:
                s.dwell_due[c] = ready
                continue
            holder = s.incidents.get(s.holder.get(c, ""))
            if self._covering(("customer", c)) is None and not (
                holder is not None and lifecycle.is_open(holder)
            ):
                self._open_at(("customer", c), ready, "lone OFF evidence for 5 min")
        for iid, due in sorted(s.confirm_due.items(), key=lambda kv: (kv[1], kv[0])):
            if due <= now:
                del s.confirm_due[iid]
                inc = s.incidents.get(iid)
                if inc is not None and lifecycle.confirm(
                    inc, due, self.actor, f"sustained {rules.confirm_sustained_s} s"
                ):
                    self._touch(inc)
        for iid, due in sorted(s.nested_due.items(), key=lambda kv: (kv[1], kv[0])):
            if due <= now:
                del s.nested_due[iid]
                inc = s.incidents.get(iid)
                if inc is not None:
                    nested_check(self, inc, due)
                    self._confirm_inferred(inc, due)
                    self._forget_if_done(inc)
        wakes = [*s.dwell_due.values(), *s.confirm_due.values(), *s.nested_due.values()]
        return Due(self._flush(), min(wakes, default=None))

    def _confirm_inferred(self, inc: Incident, at: datetime) -> None:
        """After the nested check, customers still held by ``inc`` whose restore was inferred
        are confirmed restored (so notify may now tell them). A momentary tells nobody, so
        it has nothing to confirm."""
        if inc.status == "momentary":
            return
        confirmed = [
            c
            for c, intr in inc.interruptions.items()
            if intr.end is not None and intr.unverified and self.s.holder.get(c) == inc.id
        ]
        if confirmed:
            self._touch(inc).record(
                "scope_changed", at, self.actor,
                f"nested check: {len(confirmed)} inferred restores confirmed",
                restored=confirmed, confirmed=True,
            )  # fmt: skip

    # --- public: operators ------------------------------------------------------------------
    def incident(self, incident_id: str) -> Incident:
        """A held incident (open, restored and not closed, or awaiting its nested check)."""
        return self.s.incidents[incident_id]

    def act(self, incident_id: str, action: Callable[[Incident], object]) -> list[Event]:
        """Run a lifecycle function on a held incident and return the events it emitted.

        For transitions that do not touch correlation state: acknowledge, assign_crew,
        arrive, set_etr, add_note (e.g. ``act(id, lambda i: lifecycle.arrive(i, at, who))``).
        """
        action(self._touch(self.incident(incident_id)))
        return self._flush()

    def restore(
        self,
        incident_id: str,
        at: datetime,
        actor: str,
        customers: Iterable[str] | None = None,
        points: Iterable[Point] | None = None,
        reason: str = "restored by operator",
    ) -> list[Event]:
        """Operator restore of the whole incident, or of some customers and/or points."""
        inc = self._touch(self.incident(incident_id))
        targets: list[str] | None = None
        if customers is not None or points is not None:
            targets = list(customers or ())
            for p in points or ():
                targets.extend(c for c in self.net.customers_below(p) if c in inc.interruptions)
        self._restore(inc, at, actor, reason, targets, "operator", False)
        return self._flush()

    def close(self, incident_id: str, cause: str, at: datetime, actor: str) -> list[Event]:
        """Close a restored incident with its cause code."""
        inc = self._touch(self.incident(incident_id))
        lifecycle.close(inc, cause, at, actor)
        self._forget_if_done(inc)
        return self._flush()

    def cancel(self, incident_id: str, reason: str, at: datetime, actor: str) -> list[Event]:
        """A false alarm: the incident is cancelled and its customers' OFF evidence dropped."""
        inc = self._touch(self.incident(incident_id))
        lifecycle.cancel(inc, reason, at, actor)
        self.by_point.pop(point_of(inc), None)
        self.s.confirm_due.pop(inc.id, None)
        for c, intr in inc.interruptions.items():
            st = self._state(c)
            if st.status == "OFF":
                self.off.unmark(c)
                st.status = "UNKNOWN"
            st.last_start, st.last_end = intr.start, intr.end
        self._forget_if_done(inc)
        return self._flush()

    def merge(self, incident_id: str, into: str, at: datetime, actor: str) -> list[Event]:
        """Operator merge of one open incident into another."""
        inc, survivor = self.incident(incident_id), self.incident(into)
        self._absorb(self._touch(inc), self._touch(survivor), at, actor, "merged by operator")
        return self._flush()

    # --- public: persistence ----------------------------------------------------------------
    def export(self, feeders: Iterable[str] | None = None) -> CorrelatorState:
        """A deep copy of the state (of some feeders only, when given) for saving."""
        if feeders is None:
            return copy.deepcopy(self.s)
        keep = set(feeders)
        s, net = self.s, self.net

        def cust_in(c: str) -> bool:
            return net.feeder_of(("customer", c)) in keep

        incidents = {i: inc for i, inc in s.incidents.items() if inc.feeder_id in keep}
        return copy.deepcopy(
            CorrelatorState(
                customers={c: st for c, st in s.customers.items() if cust_in(c)},
                devices={
                    d: ds for d, ds in s.devices.items() if net.feeder_of(("device", d)) in keep
                },
                incidents=incidents,
                holder={c: i for c, i in s.holder.items() if i in incidents},
                dwell_due={c: d for c, d in s.dwell_due.items() if cust_in(c)},
                confirm_due={i: d for i, d in s.confirm_due.items() if i in incidents},
                nested_due={i: d for i, d in s.nested_due.items() if i in incidents},
                issued_ids={i for i in s.issued_ids if i.split("-")[1] in keep},
                seen_signal_ids={f: ids for f, ids in s.seen_signal_ids.items() if f in keep},
            )
        )

    def take_dirty(self) -> Dirty:
        """Customers, devices and incidents changed since the last call (then cleared)."""
        dirty, self.dirty = self.dirty, Dirty()
        return dirty

    # --- evidence ---------------------------------------------------------------------------
    def _state(self, c: str) -> CustomerState:
        st = self.s.customers.get(c)
        if st is None:
            st = self.s.customers[c] = CustomerState()
        self.dirty.customers.add(c)
        return st

    def _set_off(self, c: str, st: CustomerState, t: datetime, source: EvidenceSource) -> bool:
        if st.status == "OFF":
            assert st.since is not None
            assert st.at is not None
            if t < st.since:
                st.since, st.source = t, source
            st.at = max(st.at, t)
            return True
        if st.status == "ON" and st.at is not None and t < st.at:
            return False  # older than the power_on we already have
        if st.status == "ON":
            self.on.unmark(c)
        st.status, st.since, st.at, st.source, st.presumed = "OFF", t, t, source, False
        self.off.mark(c)
        return True

    def _off(self, c: str, t: datetime, source: EvidenceSource, still_out: bool) -> None:
        st = self._state(c)
        if st.last_end is not None and t <= st.last_end:
            return  # late evidence inside a finished interruption reopens nothing
        inc = self.s.incidents.get(self.s.holder.get(c, ""))
        intr = inc.interruptions.get(c) if inc is not None else None
        if inc is not None and intr is not None and intr.end is None:
            if t < intr.start or (intr.start_source == "inferred" and source == "meter"):
                intr.start, intr.start_source = t, source
                inc.detected_at = min(inc.detected_at, t)
                self._touch(inc)
            self._set_off(c, st, t, source)
            st.still_out = st.still_out or still_out
            return
        if not self._set_off(c, st, t, source):
            return
        st.still_out = st.still_out or still_out
        if still_out and inc is not None and intr is not None and not lifecycle.is_open(inc):
            if inc.id not in self.s.nested_due:
                nested_check(self, inc, t, only=[c])  # "still out" after the check: nest now
            return  # inside the check's window the check nests it, as if read before the close
        top = self.off.topmost(c)
        if top is None or self.off.support(top) < 2:
            assert st.since is not None
            due = st.since + timedelta(seconds=self.rules.single_customer_dwell_s)
            self.s.dwell_due.setdefault(c, due)
            return
        if self._covering(top) is None:
            self._open_at(top, t, f"OFF evidence rolls up to {top[1]}")

    def _power_on(self, c: str, t: datetime) -> None:
        st = self._state(c)
        inc = self.s.incidents.get(self.s.holder.get(c, ""))
        intr = inc.interruptions.get(c) if inc is not None else None
        if inc is not None and intr is not None and intr.start <= t:
            if intr.end is None and lifecycle.is_open(inc):
                self._restore(inc, t, self.actor, "power_on", [c], "meter", False)
            elif intr.unverified:
                intr.unverified = False  # the meter confirms the inferred restoration
                self._touch(inc)
        if st.status == "OFF" and st.since is not None and t < st.since:
            return  # older than the current outage evidence
        if st.status == "ON" and st.at is not None and t < st.at:
            return
        self.s.dwell_due.pop(c, None)
        if st.status == "ON":
            st.at = t
            return
        if st.status == "OFF":
            self.off.unmark(c)
        st.status, st.since, st.at, st.source = "ON", t, t, "meter"
        st.still_out = st.presumed = False
        for p in self.on.mark(c):
            iid = self.by_point.get(p)
            tipped = self.s.incidents.get(iid) if iid is not None else None
            if tipped is not None and lifecycle.is_open(tipped) and tipped.detected_at <= t:
                why = f"re-energised: ON evidence rolls up to {p[1]}"
                self._restore(self._touch(tipped), t, self.actor, why, None, "inferred", True)

    # --- devices ----------------------------------------------------------------------------
    def _device_open(self, d: str, t: datetime, lockout: bool) -> None:
        ds = self.s.devices.get(d)
        self.dirty.devices.add(d)
        if ds is not None and ds.at >= t:
            if ds.open or ds.at == t:
                return
            # the close came first (out of order): the operation is already over
            inc = self._scada_open(d, t, lockout)
            if inc.device_id == d and lifecycle.is_open(inc):
                self._restore(inc, ds.at, self.actor, f"SCADA {d} closed", None, "device", False)
            return
        self.s.devices[d] = DeviceState(True, t, lockout)
        self._scada_open(d, t, lockout)

    def _scada_open(self, d: str, t: datetime, lockout: bool) -> Incident:
        cov = self._covering(("device", d))
        why = f"SCADA {d} open" + (" (lockout)" if lockout else "")
        if cov is not None:
            if cov.device_id == d and lifecycle.confirm(cov, t, self.actor, why):
                self._touch(cov)
            return cov
        return self._open_at(("device", d), t, why, scada=True)

    def _device_close(self, d: str, t: datetime) -> None:
        ds = self.s.devices.get(d)
        if ds is not None and ds.at > t:
            return
        self.s.devices[d] = DeviceState(False, t)
        self.dirty.devices.add(d)
        why = f"SCADA {d} closed"
        iid = self.by_point.get(("device", d))
        if iid is not None:
            inc = self.s.incidents[iid]
            if inc.detected_at <= t:
                # A closed device proves the line is live, not that every customer below has
                # power (a fuse further down may still be out): unverified until the nested
                # check, so nobody still in the dark is told the power is back.
                self._restore(self._touch(inc), t, self.actor, why, None, "device", True)
            return
        cov = self._covering(("device", d))
        if cov is None or cov.detected_at > t:
            return
        top = self.net.device_of(point_of(cov))
        for above in self.net.dev_path[d][1:]:
            known = self.s.devices.get(above)
            if known is not None and known.open:
                return  # still cut off upstream
            if above == top:
                break
        below = [c for c in self.net.customers_below(("device", d)) if c in cov.interruptions]
        self._restore(self._touch(cov), t, self.actor, why, below, "device", True)

    # --- incidents --------------------------------------------------------------------------
    def _covering(self, point: Point) -> Incident | None:
        """The open (not yet restored) incident whose scope contains ``point``."""
        by_point = self.by_point
        iid = by_point.get(point)
        if iid is None:
            kind, pid = point
            if kind == "customer":
                chain: Iterable[Point] = self.net.path(pid)
            elif kind == "transformer":
                chain = (("device", d) for d in self.net.dev_path[self.net.tx_device[pid]])
            else:
                chain = (("device", d) for d in self.net.dev_path[pid][1:])
            for p in chain:
                iid = by_point.get(p)
                if iid is not None:
                    break
        return self.s.incidents[iid] if iid is not None else None

    def _open_at(self, point: Point, t: datetime, reason: str, scada: bool = False) -> Incident:
        s, net = self.s, self.net
        holder, customers, incidents = s.holder, s.customers, s.incidents
        absorbed: dict[str, Incident] = {}
        passed: set[str] = set()  # holders that are no longer open (restored, nested window)
        rows: list[tuple[str, str | None, CustomerState | None]] = []
        first = t
        for c in self._unheld_scope(point, absorbed):
            hid = holder.get(c)
            if hid is not None and hid not in absorbed and hid not in passed:
                held = incidents.get(hid)
                if held is not None and lifecycle.is_open(held):
                    absorbed[hid] = held
                else:
                    passed.add(hid)
            st = customers.get(c)
            rows.append((c, hid, st))
            if st is not None and st.status == "OFF":
                since = st.since
                assert since is not None
                if since < first and (st.last_end is None or since > st.last_end):
                    first = since
        detected = min([first, *(a.detected_at for a in absorbed.values())])
        interruptions: list[Interruption] = []
        for c, hid, st in rows:
            if hid in absorbed:
                continue
            if st is not None and st.status == "OFF" and _fresh(st):
                assert st.since is not None
                interruptions.append(Interruption(c, st.since, st.source or "meter"))
                continue
            interruptions.append(Interruption(c, detected, "inferred"))
            if st is not None and st.status == "ON":  # presumed out: ON evidence must be new
                self.on.unmark(c)
                st.status = "UNKNOWN"
                self.dirty.customers.add(c)
        kind, pid = point
        inc = lifecycle.open_incident(
            self._new_id(net.feeder_of(point), detected, pid), "outage", net.feeder_of(point),
            net.area_of(point), detected, self.actor, reason, interruptions,
            device_id=pid if kind == "device" else None,
            transformer_id=pid if kind == "transformer" else None,
            customer_id=pid if kind == "customer" else None,
        )  # fmt: skip
        self._hold(inc, point)
        confirmed = scada
        for old in absorbed.values():
            confirmed = confirmed or old.status != "detected"
            self._absorb(old, inc, t, self.actor, "absorbed by upstream outage")
        if s.dwell_due:
            for c in inc.interruptions:
                s.dwell_due.pop(c, None)
        if confirmed:
            lifecycle.confirm(inc, t, self.actor, reason)
        else:
            s.confirm_due[inc.id] = detected + timedelta(seconds=self.rules.confirm_sustained_s)
        return inc

    def _unheld_scope(self, point: Point, absorbed: dict[str, Incident]) -> Iterable[str]:
        """Customers below ``point``, skipping whole subtrees held by open incidents.

        Those incidents go into ``absorbed`` without a per-customer scan: in a storm the
        outage climbs transformer → fuse → recloser → breaker, and rescanning every customer
        at every step would dominate the cost.
        """
        kind, pid = point
        if kind != "device":
            yield from self.net.customers_below(point)
            return
        topo, by_point, incidents = self.net.topology, self.by_point, self.s.incidents
        stack = [pid]
        while stack:
            d = stack.pop()
            for child in topo.device_children[d]:
                iid = by_point.get(("device", child))
                if iid is None:
                    stack.append(child)
                else:
                    absorbed[iid] = incidents[iid]
            for tx in topo.transformers_by_device[d]:
                iid = by_point.get(("transformer", tx))
                if iid is None:
                    yield from topo.customers_by_transformer[tx]
                else:
                    absorbed[iid] = incidents[iid]

    def _hold(self, inc: Incident, point: Point) -> None:
        self.s.incidents[inc.id] = inc
        self.by_point[point] = inc.id
        self.s.holder.update(dict.fromkeys(inc.interruptions, inc.id))
        self._touch(inc)

    def _absorb(self, old: Incident, into: Incident, at: datetime, actor: str, why: str) -> None:
        added = lifecycle.merge(old, into, at, actor, why)
        self.by_point.pop(point_of(old), None)
        self.s.confirm_due.pop(old.id, None)
        self.s.holder.update(dict.fromkeys(added, into.id))
        self._touch(old)
        self._forget_if_done(old)

    def _restore(
        self,
        inc: Incident,
        at: datetime,
        actor: str,
        reason: str,
        customers: list[str] | None,
        source: EvidenceSource,
        unverified: bool,
    ) -> None:
        ended = lifecycle.restore(
            inc, at, actor, reason, customers, source, unverified, self.rules.momentary_s
        )
        self._touch(inc)
        for c in ended:
            intr = inc.interruptions[c]
            st = self._state(c)
            st.last_start, st.last_end = intr.start, intr.end
        if not lifecycle.is_open(inc):
            self.by_point.pop(point_of(inc), None)
            self.s.confirm_due.pop(inc.id, None)
            assert inc.restored_at is not None
            self.s.nested_due[inc.id] = inc.restored_at + timedelta(
                seconds=self.rules.nested_check_s
            )

    def _forget_if_done(self, inc: Incident) -> None:
        if lifecycle.is_terminal(inc) and inc.id not in self.s.nested_due:
            self.s.incidents.pop(inc.id, None)
            for c in inc.interruptions:
                if self.s.holder.get(c) == inc.id:
                    del self.s.holder[c]

    def _new_id(self, feeder: str, when: datetime, point_id: str) -> str:
        base = f"OUT-{feeder}-{when.astimezone(UTC):%Y%m%d%H%M%S}-{point_id}"
        candidate, n = base, 1
        while candidate in self.s.issued_ids:
            n += 1
            candidate = f"{base}-{n}"
        self.s.issued_ids.add(candidate)
        return candidate

    def _touch(self, inc: Incident) -> Incident:
        self._touched[inc.id] = inc
        self.dirty.incidents.add(inc.id)
        return inc

    def _flush(self) -> list[Event]:
        events: list[Event] = []
        for inc in self._touched.values():
            events.extend(inc.drain_events())
        self._touched.clear()
        return events


def _fresh(st: CustomerState) -> bool:
    """OFF evidence newer than the customer's last finished interruption."""
    return st.last_end is None or (st.since is not None and st.since > st.last_end)
