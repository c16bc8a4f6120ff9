"""A compressed typhoon storm for the whole-stack chaos, scale-out and storm benchmark runs.

The bundled typhoon scenario spans two days under the default rule windows (5 min dwell,
10 min nested check). A stack run on the wall clock cannot wait that long, so this storm
plays the same kinds of faults within about two minutes of event time, against a policy
file whose windows are shrunk to match (:func:`compressed_policy`):

* a burst of last gasps: breaker and recloser lockouts (SCADA) over ``lockout_share`` of
  the feeders, plus lossy fuse and transformer outages seen by meters only;
* customer calls (no_power, still_out), duplicated and late AMI messages, bad messages;
* a momentary (recloser trip and reclose within seconds);
* an upstream merge (a fuse goes first, its recloser locks out seconds later);
* restore waves, and a nested outage: one fuse below a restored breaker stays out.

Every time is ``base`` + an offset in seconds, so the caller places the storm where the
wall-clock rules need it (just ahead of now, or in 2099 so no timer ever fires).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml

from services.common.policy import default_policy_text
from services.demo.county import CountyShape, generate_county
from services.demo.scenario_builder import ScenarioBuilder


@dataclass(frozen=True, slots=True)
class Windows:
    """Rule windows (seconds) of the compressed policy and the storm's own span."""

    sustained_s: int = 60  # momentary / dwell / confirmation / notify threshold
    nested_check_s: int = 40
    span_s: int = 120  # last event offset (restore waves end before this)


def county(customers: int, seed: int = 11) -> dict[str, Any]:
    """A generated county; about one feeder per 2,500 customers (at least 12)."""
    feeders = max(12, customers // 2500)
    return generate_county(CountyShape(customers=customers, feeders=feeders, seed=seed))


def compressed_policy(windows: Windows, *, sms_rate: float = 2000.0) -> str:
    """The default policy with the correlation and notification windows of ``windows`` and
    SLA targets far beyond any run (no SLA event fires, so no lifecycle seq depends on
    when a wall-clock SLA timer happened to run)."""
    doc = yaml.safe_load(default_policy_text())
    c = doc["correlation"]
    for key in ("momentary_s", "single_customer_dwell_s", "confirm_sustained_s"):
        c[key] = windows.sustained_s
    c["nested_check_s"] = windows.nested_check_s
    doc["notifications"]["momentary_threshold_s"] = windows.sustained_s
    for channel in doc["notifications"]["rate_limits"].values():
        channel["rate_per_s"] = sms_rate
        channel["burst"] = int(sms_rate)
    for targets in doc["sla"]["areas"].values():
        for key in targets:
            targets[key] = 100_000
    doc["sla"]["first_notice_min"] = 100_000
    dumped: str = yaml.safe_dump(doc, sort_keys=False)
    return dumped


class _Tree:
    def __init__(self, topology: dict[str, Any]) -> None:
        self.children: dict[str, list[str]] = {d["id"]: [] for d in topology["devices"]}
        for d in topology["devices"]:
            if d["parent"] is not None:
                self.children[d["parent"]].append(d["id"])
        self.tx_by_device: dict[str, list[str]] = {d["id"]: [] for d in topology["devices"]}
        for tx in topology["transformers"]:
            self.tx_by_device[tx["device"]].append(tx["id"])
        self.by_tx: dict[str, list[dict[str, Any]]] = {
            t["id"]: [] for t in topology["transformers"]
        }
        for c in topology["customers"]:
            self.by_tx[c["transformer"]].append(c)

    def below(self, device: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        stack = [device]
        while stack:
            d = stack.pop()
            stack.extend(self.children[d])
            for tx in self.tx_by_device[d]:
                out.extend(self.by_tx[tx])
        return sorted(out, key=lambda c: c["id"])


def storm_lines(
    topology: dict[str, Any],
    base: datetime,
    windows: Windows = Windows(),
    *,
    seed: int = 5,
    lockout_share: float = 0.25,
) -> list[dict[str, Any]]:
    """Scenario lines (DESIGN section 14) of the storm, in delivery order."""
    rng = random.Random(seed)
    b = ScenarioBuilder(rng)
    tree = _Tree(topology)
    w = windows
    sustained = w.sustained_s

    def at(s: float) -> datetime:
        return base + timedelta(seconds=s)

    feeders = [f["id"] for f in topology["feeders"]]
    restore_at = sustained + 35.0  # sustained outages end here (restore wave)
    # 1. Burst: breaker lockouts on a share of the feeders; the first one keeps a nested fuse.
    n_lockouts = max(1, round(len(feeders) * lockout_share))
    locked = feeders[:n_lockouts]
    for i, f in enumerate(locked):
        bkr = f"{f}-BKR"
        t0 = 2.0 + 20.0 * i / max(1, n_lockouts)
        b.device(bkr, at(t0), "open", lockout=True)
        b.device(bkr, at(restore_at + i % 5), "closed")
        everyone = tree.below(bkr)
        stuck: list[dict[str, Any]] = tree.below(f"{f}-R1-FU2") if i == 0 else []
        stuck_ids = {c["id"] for c in stuck}
        rest = [c for c in everyone if c["id"] not in stuck_ids]
        b.meter_outage(rest, at(t0), at(restore_at + i % 5), report_off=0.7, report_on=0.8,
                       late_share=0.02)  # fmt: skip
        for c in rest:
            if rng.random() < 0.02:
                b.call(c, at(t0 + rng.uniform(5, 35)), "no_power")
        if stuck:
            # Nested: no restore from these meters; still_out calls after re-energising.
            b.meter_outage(stuck, at(t0), at(10_000), report_off=0.8, report_on=0.0)
            for c in stuck[:3]:
                b.call(c, at(restore_at + 8), "still_out")
    others = feeders[n_lockouts:]
    # 2. Fuse outages seen by meters only (lossy), restored by meters.
    for i, f in enumerate(others[0::3]):
        fuse = f"{f}-R1-FU{1 + i % 4}"
        t0 = 3.0 + i % 15
        b.meter_outage(tree.below(fuse), at(t0), at(restore_at + 5), report_off=0.8,
                       report_on=0.85)  # fmt: skip
    # 3. Transformer outages.
    for i, f in enumerate(others[1::3]):
        tx = tree.tx_by_device[f"{f}-R2-FU{1 + i % 4}"][0]
        b.meter_outage(tree.by_tx[tx], at(6.0 + i % 10), at(restore_at + 10), report_off=0.9)
    # 4. Momentary: recloser trip and reclose; meters blink.
    for f in others[2::3][:2]:
        rec = f"{f}-R1"
        b.device(rec, at(5.0), "open", lockout=False)
        b.device(rec, at(25.0), "closed")
        b.meter_outage(tree.below(rec), at(5.0), at(25.0), report_off=0.3, report_on=0.3,
                       late_share=0.0)  # fmt: skip
    # 5. Upstream merge: a fuse first, its recloser locks out eight seconds later.
    for f in others[2::3][2:4]:
        fuse, rec = f"{f}-R2-FU2", f"{f}-R2"
        b.meter_outage(tree.below(fuse), at(10.0), at(restore_at), report_off=0.85)
        fuse_ids = {c["id"] for c in tree.below(fuse)}
        rest = [c for c in tree.below(rec) if c["id"] not in fuse_ids]
        b.device(rec, at(18.0), "open", lockout=True)
        b.device(rec, at(restore_at), "closed")
        b.meter_outage(rest, at(18.0), at(restore_at), report_off=0.5, report_on=0.5)
    # 6. A single customer: one meter off, a call, restored later.
    single = tree.by_tx[tree.tx_by_device[f"{others[-1]}-R2-FU4"][0]][1]
    b.meter_outage([single], at(8.0), at(restore_at + 15), report_off=1.0, report_on=1.0,
                   late_share=0.0, dup_share=0.0)  # fmt: skip
    b.call(single, at(30.0), "no_power")
    # 7. Bad messages, dead-lettered by ingest.
    b.bad_messages(topology, at(20.0))
    lines = b.lines()
    _clip_delivery(lines, base + timedelta(seconds=w.span_s))
    return lines


def _clip_delivery(lines: list[dict[str, Any]], last: datetime) -> None:
    """Late AMI messages keep their place in the order but not their 15–40 min delay (a
    stack run delivers the storm paced by line, not by ``at``)."""
    iso = last.isoformat(timespec="seconds")
    for line in lines:
        if datetime.fromisoformat(line["at"]) > last:
            line["at"] = iso


def latest_event(lines: list[dict[str, Any]]) -> datetime:
    """The latest ``occurred_at`` among the lines."""
    return max(
        datetime.fromisoformat(v["occurred_at"])
        for line in lines
        if isinstance(v := line.get("value"), dict) and "occurred_at" in v
    )
