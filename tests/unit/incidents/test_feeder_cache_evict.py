"""Evicting one feeder from the correlator cache drops exactly that feeder's state: its
customers (and their OFF/ON evidence), devices, incidents, holders and timers, and leaves
every other feeder's untouched."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from services.common.topology.loader import parse_topology_json
from services.incidents.domain.meter_state import SignalIn
from services.incidents.feeder_cache import FeederStateCache
from tests.topology_data import synthetic_topology
from tests.unit.incidents.topology_fixture import at

TOPOLOGY = parse_topology_json(orjson.dumps(synthetic_topology(6000)))  # three feeders


def off(customer: str, n: int) -> SignalIn:
    feeder = TOPOLOGY.devices[TOPOLOGY.transformers[TOPOLOGY.customers[customer].transformer]
                              .device].feeder  # fmt: skip
    return SignalIn(signal_id=f"s{n}", kind="power_off", feeder_id=feeder, occurred_at=at(n),
                    source="meter", device_id=None, customer_id=customer, data={})  # fmt: skip


def of_feeder(cache: FeederStateCache, feeder: str | None) -> dict[str, Any]:
    """The cache's state belonging to ``feeder`` (None: to every other feeder), found the
    slow way: each item's feeder through the correlator's network index."""
    s, net = cache.corr.s, cache.corr.net

    def mine(point: tuple[Any, str]) -> bool:
        on = net.feeder_of(point)
        return on == feeder if feeder is not None else on != EVICTED

    incidents = {i for i, inc in s.incidents.items()
                 if (inc.feeder_id == feeder if feeder else inc.feeder_id != EVICTED)}  # fmt: skip
    return {
        "customers": {c: dataclasses.astuple(st) for c, st in s.customers.items()
                      if mine(("customer", c))},  # fmt: skip
        "devices": {d for d in s.devices if mine(("device", d))},
        "incidents": incidents,
        "holders": {c: i for c, i in s.holder.items() if mine(("customer", c))},
        "dwell": {c: t for c, t in s.dwell_due.items() if mine(("customer", c))},
        # OFF evidence counted under each device (a dropped customer is unmarked)
        "off": {d: n for d, n in cache.corr.off.below.items() if n and mine(("device", d))},
    }


EVICTED = "F002"


class TestEvict:
    def test_drops_the_feeder_and_keeps_the_others(self) -> None:
        cache = FeederStateCache(TOPOLOGY)
        customers = sorted(TOPOLOGY.customers)
        n = 0
        for c in customers[::7]:  # last gasps on every feeder: incidents, holders, dwells
            n += 1
            cache.corr.apply(off(c, n))
        cache.corr.run_due(at(n + 120))
        before_kept = of_feeder(cache, None)
        before_evicted = of_feeder(cache, EVICTED)
        assert all(before_evicted[k] for k in ("customers", "incidents", "holders", "off"))
        cache.evict(EVICTED)
        assert of_feeder(cache, EVICTED) == {k: type(v)() for k, v in before_evicted.items()}
        assert of_feeder(cache, None) == before_kept
