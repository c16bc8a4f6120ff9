"""A deterministic two-day typhoon scenario over a county topology (DESIGN section 14).

Every fault the correlation rules know is placed on the county, with the lossy, late and
duplicated AMI traffic of a real storm, customer calls, SCADA operations, background voltage
monitoring, surveys after restoration and a few bad messages. Besides the scenario lines
the generator returns the *truth*: what each fault should become, so tests can check the
whole pipeline against it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from services.demo.scenario_builder import ScenarioBuilder

CST = timezone(timedelta(hours=8))
DEFAULT_START = datetime(2026, 7, 14, 6, 0, tzinfo=CST)


@dataclass(frozen=True, slots=True)
class FaultTruth:
    """What a fault should turn into once correlated."""

    name: str
    kind: str  # outage | momentary | voltage
    point_kind: str  # device | transformer | customer
    point: str
    customers: tuple[str, ...]
    start: datetime
    end: datetime
    parent: str | None = None  # name of the fault a nested outage sits under
    merged_from: tuple[str, ...] = ()  # names of faults absorbed by this one


@dataclass(slots=True)
class Scenario:
    lines: list[dict[str, Any]]
    truth: list[FaultTruth] = field(default_factory=list)
    bad_messages: dict[str, int] = field(default_factory=dict)  # dead-letter code → count


@dataclass(slots=True)
class _Index:
    topology: dict[str, Any]
    feeder_area: dict[str, str] = field(init=False)
    children: dict[str, list[str]] = field(init=False)
    tx_by_device: dict[str, list[str]] = field(init=False)
    customers_by_tx: dict[str, list[dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        t = self.topology
        self.feeder_area = {f["id"]: f["area"] for f in t["feeders"]}
        self.children = {d["id"]: [] for d in t["devices"]}
        for d in t["devices"]:
            if d["parent"] is not None:
                self.children[d["parent"]].append(d["id"])
        self.tx_by_device = {d["id"]: [] for d in t["devices"]}
        for tx in t["transformers"]:
            self.tx_by_device[tx["device"]].append(tx["id"])
        self.customers_by_tx = {tx["id"]: [] for tx in t["transformers"]}
        for c in t["customers"]:
            self.customers_by_tx[c["transformer"]].append(c)

    def customers_below(self, device: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        stack = [device]
        while stack:
            d = stack.pop()
            stack.extend(self.children[d])
            for tx in self.tx_by_device[d]:
                out.extend(self.customers_by_tx[tx])
        return sorted(out, key=lambda c: c["id"])


def generate_typhoon(
    topology: dict[str, Any], *, seed: int = 7, start: datetime = DEFAULT_START
) -> Scenario:
    """The bundled typhoon scenario for a county made by ``generate_county``."""
    rng = random.Random(seed)
    idx = _Index(topology)
    b = ScenarioBuilder(rng)
    truth: list[FaultTruth] = []
    h = timedelta(hours=1)
    m = timedelta(minutes=1)

    def at(hours: float) -> datetime:
        return start + timedelta(hours=hours)

    def outage(name: str, point_kind: str, point: str, customers: list[dict[str, Any]],
               t0: datetime, t1: datetime, *, report_on: float = 0.85, **kw: Any) -> None:
        b.meter_outage(customers, t0, t1, report_on=report_on, **kw)
        truth.append(FaultTruth(name, "outage", point_kind, point,
                                tuple(c["id"] for c in customers), t0, t1))

    # Background: monitored voltage, hourly from 150 sampled meters for the whole period.
    monitored = rng.sample(topology["customers"], min(150, len(topology["customers"])))
    b.voltage_series(monitored, at(0), at(48), interval=h, nominal={
        tx["id"]: tx["nominal_v"] for tx in topology["transformers"]})

    # 1. Fuse outage from lossy last gasps (80 % report), restored by meters.
    fu = "F01-R1-FU2"
    outage("fuse", "device", fu, idx.customers_below(fu), at(6.2), at(8.4), report_off=0.8)
    b.calls(idx.customers_below(fu), at(6.2), share=0.06)

    # 2. Transformer outage.
    n_tx = len(topology["transformers"])
    tx = topology["transformers"][min(40, n_tx // 3)]["id"]
    outage("transformer", "transformer", tx, idx.customers_by_tx[tx], at(7.0), at(8.6),
           report_off=0.9)

    # 3. Single customer: one meter, confirmed after the 5-minute dwell, with a call.
    single_tx = idx.customers_by_tx[topology["transformers"][min(120, n_tx // 2)]["id"]]
    single = single_tx[min(3, len(single_tx) - 1)]
    outage("single", "customer", single["id"], [single], at(7.5), at(9.7), report_off=1.0,
           report_on=1.0)
    b.call(single, at(7.5) + 12 * m, "no_power")

    # 4. SCADA lockout of a recloser: confirmed at once; lossy meters (30 % report).
    rec = "F03-R1"
    b.device(rec, at(8.1), "open", lockout=True)
    b.device(rec, at(11.2), "closed")
    outage("lockout", "device", rec, idx.customers_below(rec), at(8.1), at(11.2),
           report_off=0.3, report_on=0.3)
    b.calls(idx.customers_below(rec), at(8.1), share=0.03)

    # 5. Momentaries: a recloser trip-and-reclose and a fuse-level blink seen by meters only.
    rec2 = "F02-R2"
    b.device(rec2, at(9.0), "open", lockout=False)
    b.device(rec2, at(9.0) + timedelta(seconds=40), "closed")
    b.meter_outage(idx.customers_below(rec2), at(9.0), at(9.0) + timedelta(seconds=40),
                   report_off=0.3, report_on=0.3, late_share=0.0)
    truth.append(FaultTruth("momentary-recloser", "momentary", "device", rec2,
                            tuple(c["id"] for c in idx.customers_below(rec2)), at(9.0),
                            at(9.0) + timedelta(seconds=40)))
    fu_m = "F05-R2-FU1"
    b.meter_outage(idx.customers_below(fu_m), at(13.0), at(13.0) + 2 * m, report_off=0.9,
                   report_on=0.9, late_share=0.0)
    truth.append(FaultTruth("momentary-fuse", "momentary", "device", fu_m,
                            tuple(c["id"] for c in idx.customers_below(fu_m)), at(13.0),
                            at(13.0) + 2 * m))

    # 6. Upstream merge: a fuse goes first, its recloser locks out four minutes later.
    fu_first, rec3 = "F07-R1-FU2", "F07-R1"
    b.meter_outage(idx.customers_below(fu_first), at(10.0), at(13.5), report_off=0.85)
    rest = [c for c in idx.customers_below(rec3) if c["transformer"] not in
            {t for t in idx.tx_by_device[fu_first]}]
    b.device(rec3, at(10.0) + 4 * m, "open", lockout=True)
    b.device(rec3, at(13.5), "closed")
    b.meter_outage(rest, at(10.0) + 4 * m, at(13.5), report_off=0.5, report_on=0.5)
    truth.append(FaultTruth("merge-fuse", "outage", "device", fu_first,
                            tuple(c["id"] for c in idx.customers_below(fu_first)), at(10.0),
                            at(13.5)))
    truth.append(FaultTruth("merge-recloser", "outage", "device", rec3,
                            tuple(c["id"] for c in idx.customers_below(rec3)), at(10.0),
                            at(13.5), merged_from=("merge-fuse",)))

    # 7. Nested outage: the breaker locks out, closes two hours later; one fuse below stays
    #    out for 2.5 hours more (its meters send no restore; some customers call still_out).
    bkr, fu_n = "F06-BKR", "F06-R2-FU3"
    nested = idx.customers_below(fu_n)
    nested_ids = {c["id"] for c in nested}
    others = [c for c in idx.customers_below(bkr) if c["id"] not in nested_ids]
    b.device(bkr, at(14.0), "open", lockout=True)
    b.device(bkr, at(16.0), "closed")
    b.meter_outage(others, at(14.0), at(16.0), report_off=0.6, report_on=0.8)
    b.meter_outage(nested, at(14.0), at(18.5), report_off=0.6, report_on=0.9)
    b.calls(nested, at(16.0) + 15 * m, share=0.1, kind="still_out")
    truth.append(FaultTruth("nested-breaker", "outage", "device", bkr,
                            tuple(c["id"] for c in idx.customers_below(bkr)), at(14.0),
                            at(16.0)))
    truth.append(FaultTruth("nested-fuse", "outage", "device", fu_n, tuple(sorted(nested_ids)),
                            at(14.0), at(18.5), parent="nested-breaker"))

    # 8. Remote feeder: a long recloser outage on day two (slow crews, SLA at risk).
    rec4 = "F10-R2"
    b.device(rec4, at(26.0), "open", lockout=True)
    b.device(rec4, at(34.5), "closed")
    outage("remote-lockout", "device", rec4, idx.customers_below(rec4), at(26.0), at(34.5),
           report_off=0.4, report_on=0.4)

    # 9. More storm damage: fuse outages across the county on day one evening.
    for n, (fuse, t0, hours) in enumerate((("F04-R1-FU3", 17.2, 3.0), ("F08-R2-FU1", 18.0, 5.5),
                                           ("F11-R1-FU4", 19.5, 7.0), ("F09-R2-FU2", 20.1, 2.2),
                                           ("F12-R1-FU1", 21.0, 9.0))):
        outage(f"storm-fuse-{n + 1}", "device", fuse, idx.customers_below(fuse), at(t0),
               at(t0 + hours), report_off=0.75)
        b.calls(idx.customers_below(fuse), at(t0), share=0.04)

    # 10. Voltage: a long rural transformer sags under load for five hours; a customer calls.
    vtx = next(t["id"] for t in topology["transformers"]
               if t["device"].startswith("F05-") and t["nominal_v"] == 220)
    vmeters = idx.customers_by_tx[vtx]
    b.voltage_series(vmeters, at(30.0), at(40.0), interval=15 * m, nominal={vtx: 220},
                     low_between=(at(32.0), at(37.0)))
    b.call(vmeters[0], at(33.0), "low_voltage")
    truth.append(FaultTruth("voltage", "voltage", "transformer", vtx,
                            tuple(c["id"] for c in vmeters), at(32.0), at(37.0)))

    # Sags and swells seen by a few meters during the storm.
    b.power_quality(rng.sample(topology["customers"], 40), at(6.0), at(22.0))

    # Surveys a day after restoration, worse for long outages.
    for t in truth:
        if t.kind == "outage" and t.parent is None and not t.name.startswith("merge-fuse"):
            b.surveys(idx_customers(idx, t.customers), t.end + 20 * h, hours=(t.end - t.start))

    bad = b.bad_messages(topology, at(12.0))
    return Scenario(lines=b.lines(), truth=truth, bad_messages=bad)


def idx_customers(idx: _Index, ids: tuple[str, ...]) -> list[dict[str, Any]]:
    wanted = set(ids)
    return [c for cs in idx.customers_by_tx.values() for c in cs if c["id"] in wanted]
