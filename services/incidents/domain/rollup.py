"""Incremental bottom-up roll-up (DESIGN section 5 rules 2, 3 and 6) over a topology.

:class:`NetworkIndex` precomputes, once per topology, everything the rules walk: each
customer's transformer, each device's path to the feeder head and every node's roll-up
threshold. :class:`RollupTree` keeps counters per transformer and device for one kind of
evidence (OFF, or ON) and updates them in O(depth) when one customer is marked or unmarked,
so a storm never rescans the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from services.common.topology.model import Topology

from .rules import CorrelationRules

PointKind = Literal["device", "transformer", "customer"]
Point = tuple[PointKind, str]
_NO_FLIPS: tuple[Point, ...] = ()


class NetworkIndex:
    """Lookups for the correlator, derived once from a :class:`Topology`."""

    def __init__(self, topology: Topology, rules: CorrelationRules) -> None:
        self.topology = topology
        self.cust_tx = {c.id: c.transformer for c in topology.customers.values()}
        self.tx_device = {t.id: t.device for t in topology.transformers.values()}
        self.tx_threshold = {
            t: rules.rollup_threshold(len(cs))
            for t, cs in topology.customers_by_transformer.items()
        }
        self.dev_threshold = {
            d: rules.rollup_threshold(
                len(topology.device_children[d]) + len(topology.transformers_by_device[d])
            )
            for d in topology.devices
        }
        self.dev_path: dict[str, tuple[str, ...]] = {
            d: tuple(topology.device_path(d)) for d in topology.devices
        }

    def feeder_of(self, point: Point) -> str:
        """The feeder a point belongs to."""
        return self.topology.devices[self.device_of(point)].feeder

    def device_of(self, point: Point) -> str:
        """The device a point hangs from (itself for a device)."""
        kind, pid = point
        if kind == "device":
            return pid
        if kind == "transformer":
            return self.tx_device[pid]
        return self.tx_device[self.cust_tx[pid]]

    def area_of(self, point: Point) -> str:
        """Area of a point: the transformer's (or its feeder's); a device takes its feeder's."""
        kind, pid = point
        if kind == "transformer":
            return self.topology.area_of_transformer(pid)
        if kind == "customer":
            return self.topology.area_of_transformer(self.cust_tx[pid])
        return self.topology.feeders[self.topology.devices[pid].feeder].area

    def customers_below(self, point: Point) -> Iterator[str]:
        """Every customer downstream of a point (the point's scope)."""
        kind, pid = point
        if kind == "device":
            yield from self.topology.customers_below(pid)
        elif kind == "transformer":
            yield from self.topology.customers_by_transformer[pid]
        else:
            yield pid

    def within(self, point: Point, ancestor: Point) -> bool:
        """True when ``point`` is ``ancestor`` or lies downstream of it."""
        if point == ancestor:
            return True
        akind, aid = ancestor
        kind, pid = point
        if akind == "customer":
            return False
        if akind == "transformer":
            return kind == "customer" and self.cust_tx[pid] == aid
        return aid in self.dev_path[self.device_of(point)]

    def path(self, customer_id: str) -> Iterator[Point]:
        """Nodes above a customer, bottom-up: its transformer, then devices to the head."""
        tx = self.cust_tx[customer_id]
        yield ("transformer", tx)
        for d in self.dev_path[self.tx_device[tx]]:
            yield ("device", d)


class RollupTree:
    """Counters for one kind of evidence; a node is *predicted* when its threshold is met."""

    __slots__ = ("net", "tx_count", "dev_count", "below", "tx_hit", "dev_hit")

    def __init__(self, net: NetworkIndex) -> None:
        self.net = net
        self.tx_count: dict[str, int] = {}
        self.dev_count: dict[str, int] = {}
        self.below: dict[str, int] = {}  # marked customers under each device (support)
        self.tx_hit: set[str] = set()
        self.dev_hit: set[str] = set()

    def mark(self, customer_id: str) -> tuple[Point, ...]:
        """Count one customer's evidence; returns the nodes that became predicted."""
        net = self.net
        tx = net.cust_tx[customer_id]
        path = net.dev_path[net.tx_device[tx]]
        below = self.below
        for d in path:
            below[d] = below.get(d, 0) + 1
        n = self.tx_count.get(tx, 0) + 1
        self.tx_count[tx] = n
        if n != net.tx_threshold[tx]:
            return _NO_FLIPS
        self.tx_hit.add(tx)
        flips: list[Point] = [("transformer", tx)]
        for d in path:
            m = self.dev_count.get(d, 0) + 1
            self.dev_count[d] = m
            if m != net.dev_threshold[d]:
                break
            self.dev_hit.add(d)
            flips.append(("device", d))
        return tuple(flips)

    def unmark(self, customer_id: str) -> None:
        """Withdraw one customer's evidence, un-predicting nodes that fall below threshold."""
        net = self.net
        tx = net.cust_tx[customer_id]
        path = net.dev_path[net.tx_device[tx]]
        below = self.below
        for d in path:
            below[d] -= 1
        n = self.tx_count[tx] - 1
        self.tx_count[tx] = n
        if n != net.tx_threshold[tx] - 1:
            return
        self.tx_hit.discard(tx)
        for d in path:
            m = self.dev_count[d] - 1
            self.dev_count[d] = m
            if m != net.dev_threshold[d] - 1:
                break
            self.dev_hit.discard(d)

    def predicted(self, point: Point) -> bool:
        """True when the roll-up rule predicts this node (out for OFF, re-energised for ON)."""
        kind, pid = point
        if kind == "transformer":
            return pid in self.tx_hit
        if kind == "device":
            return pid in self.dev_hit
        return False

    def support(self, point: Point) -> int:
        """Customers with this evidence under a node."""
        kind, pid = point
        if kind == "transformer":
            return self.tx_count.get(pid, 0)
        if kind == "device":
            return self.below.get(pid, 0)
        return 1

    def topmost(self, customer_id: str, below: Point | None = None) -> Point | None:
        """The highest predicted node above a customer (strictly under ``below`` if given)."""
        top: Point | None = None
        tx = self.net.cust_tx[customer_id]
        if below == ("transformer", tx) or (below is not None and below[0] == "customer"):
            return None
        if tx in self.tx_hit:
            top = ("transformer", tx)
        for d in self.net.dev_path[self.net.tx_device[tx]]:
            if below is not None and below == ("device", d):
                break
            if d in self.dev_hit:
                top = ("device", d)
        return top
