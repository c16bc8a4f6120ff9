"""Storm benchmark: 100k last gasps (80 % of meters of 125k) through the outage correlator.

Run: python bench/bench_correlation_storm.py  — prints signals/s for the OFF storm and the
restoration wave. Not collected by pytest.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer
from services.incidents.domain.correlation import Correlator
from services.incidents.domain.meter_state import SignalIn


def county(feeders: int = 25, reclosers: int = 5, fuses: int = 10, txs: int = 10, cust: int = 10):
    fs, ds, ts, cs = [], [], [], []
    for f in range(feeders):
        fid = f"F{f:02d}"
        fs.append(Feeder(fid, fid, "S1", "rural"))
        ds.append(Device(f"{fid}-BKR", fid, None, "breaker"))
        for r in range(reclosers):
            rid = f"{fid}-R{r}"
            ds.append(Device(rid, fid, f"{fid}-BKR", "recloser"))
            for u in range(fuses):
                uid = f"{rid}-FU{u}"
                ds.append(Device(uid, fid, rid, "fuse"))
                for t in range(txs):
                    tid = f"{uid}-T{t}"
                    ts.append(Transformer(tid, uid, 220, 1))
                    for c in range(cust):
                        cs.append(Customer(f"{tid}-C{c}", f"{tid}-M{c}", tid, "residential"))
    return Topology.build(fs, ds, ts, cs)


def main() -> None:
    rng = random.Random(7)
    topo = county()
    t0 = datetime(2026, 7, 14, tzinfo=UTC)
    customers = list(topo.customers.values())
    # a typhoon: every fuse in 40 % of the reclosers' areas blows; 80 % of meters report
    hit = [c for c in customers if hash(c.transformer.split("-FU")[0]) % 5 < 2]
    hit = [c for c in hit if rng.random() < 0.8] + rng.sample(customers, 60_000)
    hit = list({c.id: c for c in hit}.values())[:100_000]
    rng.shuffle(hit)
    offs = [
        SignalIn(f"g{i}", "power_off", c.transformer.split("-")[0],
                 t0 + timedelta(seconds=i / 1000), meter_id=c.meter, customer_id=c.id)
        for i, c in enumerate(hit)
    ]  # fmt: skip
    ons = [
        SignalIn(f"r{i}", "power_on", c.transformer.split("-")[0],
                 t0 + timedelta(hours=2, seconds=i / 1000), meter_id=c.meter, customer_id=c.id)
        for i, c in enumerate(hit)
    ]  # fmt: skip
    corr = Correlator(topo)
    for name, batch in (("last gasps", offs), ("power_on", ons)):
        start = time.process_time()
        events = 0
        for s in batch:
            events += len(corr.apply(s))
        took = time.process_time() - start
        print(f"{name}: {len(batch)} signals in {took:.2f} s = {len(batch) / took:,.0f}/s, "
              f"{events} events, {len(corr.s.incidents)} incidents held")  # fmt: skip
    start = time.process_time()
    due = corr.run_due(t0 + timedelta(hours=3))
    print(f"run_due: {len(due.events)} events in {time.process_time() - start:.2f} s")


if __name__ == "__main__":
    main()
