"""Property tests: random faults on random trees, lossy, duplicated and reordered delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from correlation_harness import Harness
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer
from services.incidents.domain.correlation import point_of
from services.incidents.domain.meter_state import SignalIn
from services.incidents.domain.rollup import NetworkIndex, Point, RollupTree
from services.incidents.domain.rules import CorrelationRules

T0 = datetime(2026, 7, 14, tzinfo=UTC)


@dataclass
class Case:
    topology: Topology
    faults: list[tuple[Point, int, int]]  # point, start s, duration s
    signals: list[tuple[float, SignalIn]]  # arrival s, signal


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_dev = draw(st.integers(2, 6))
    devices = [Device("D0", "F1", None, "breaker")]
    devices += [
        Device(f"D{i}", "F1", f"D{draw(st.integers(0, i - 1))}", "fuse") for i in range(1, n_dev)
    ]
    n_tx = draw(st.integers(2, 8))
    txs = [Transformer(f"T{i}", f"D{draw(st.integers(0, n_dev - 1))}", 220, 1) for i in range(n_tx)]
    customers = [
        Customer(f"T{i}-C{j}", f"T{i}-M{j}", f"T{i}", "residential")
        for i in range(n_tx)
        for j in range(draw(st.integers(1, 6)))
    ]
    topo = Topology.build([Feeder("F1", "f", "S", "urban")], devices, txs, customers)
    rules = CorrelationRules()
    net = NetworkIndex(topo, rules)
    nodes: list[Point] = [("device", d.id) for d in devices[1:]] + [
        ("transformer", t.id) for t in txs
    ]
    picked = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=3, unique=True))
    for a in picked:
        for b in picked:
            assume(a == b or not net.within(a, b))
    scopes = {p: set(net.customers_below(p)) for p in picked}
    assume(all(scopes.values()))
    # the roll-up of complete evidence must single out each fault's customers exactly
    tree = RollupTree(net)
    for p in picked:
        for c in scopes[p]:
            tree.mark(c)
    for p in picked:
        for c in scopes[p]:
            top = tree.topmost(c)
            got = set(net.customers_below(top)) if top else {c}
            assume(got == scopes[p] or (len(scopes[p]) == 1 and top is None))
    faults: list[tuple[Point, int, int]] = []
    signals: list[tuple[float, SignalIn]] = []
    rnd = draw(st.randoms(use_true_random=False))
    n = 0
    for p in picked:
        start, duration = draw(st.integers(0, 600)), draw(st.integers(400, 7200))
        faults.append((p, start, duration))
        by_tx: dict[str, list[str]] = {}
        for c in sorted(scopes[p]):
            by_tx.setdefault(net.cust_tx[c], []).append(c)
        for tx, members in by_tx.items():
            size, thr = len(members), net.tx_threshold[tx]
            lost_off = set(rnd.sample(members, rnd.randint(0, size - thr)))
            lost_on = set(rnd.sample(members, rnd.randint(0, min(thr - 1, size - thr))))
            for c in members:
                for kind, base, lost in (
                    ("power_off", start, lost_off),
                    ("power_on", start + duration, lost_on),
                ):
                    if c in lost:
                        continue
                    t = base + rnd.uniform(0, 20)
                    n += 1
                    s = SignalIn(f"e{n}", kind, "F1", T0 + timedelta(seconds=t), customer_id=c)
                    for _ in range(2 if rnd.random() < 0.1 else 1):  # duplicates
                        signals.append((t + rnd.uniform(0, 60), s))
    signals.sort(key=lambda x: x[0])
    return Case(topo, faults, signals)


class TestCorrelationProperties:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(cases())
    def test_faults_found_and_customer_minutes_match(self, case: Case) -> None:
        h = Harness(case.topology)
        for arrival, s in case.signals:
            h.tick(T0 + timedelta(seconds=arrival))
            h.feed([s])
        end = T0 + timedelta(seconds=max(a for a, _ in case.signals) + 7200)
        h.tick(end)
        live = [i for i in h.seen.values() if i.status not in ("merged", "cancelled")]
        net = h.corr.net
        intervals: dict[str, list[tuple[datetime, datetime]]] = {}
        for inc in live:
            for c, intr in inc.interruptions.items():
                assert intr.end is not None, (inc.id, c)
                intervals.setdefault(c, []).append((intr.start, intr.end))
        truth: dict[str, float] = {}
        for point, _start, duration in case.faults:
            scope = set(net.customers_below(point))
            found = [i for i in live if scope <= i.customers_affected
                     and set(net.customers_below(point_of(i))) == scope]  # fmt: skip
            assert found, (point, [(i.id, i.status) for i in live])
            for c in scope:
                truth[c] = duration / 60
        for c, spans in intervals.items():
            spans.sort()
            for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False):
                assert e1 <= s2, (c, spans)  # never counted twice at one time
            got = sum((e - s).total_seconds() for s, e in spans) / 60
            assert abs(got - truth.get(c, 0.0)) <= 1.0, (c, got, truth.get(c))
        assert set(truth) == set(intervals)
