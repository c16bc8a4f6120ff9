"""A small hand-made feeder for the correlation tests, and a signal builder.

F01-BKR ─┬─ F01-R1 ─┬─ F01-FU1 ─┬─ T11 (5 customers)
         │          │           └─ T12 (5)
         │          └─ F01-FU2 ─┬─ T21 (5)
         │                      └─ T22 (5)
         ├─ F01-FU3 ── T31 (4)
         └─ T01 (1 customer, straight under the breaker)
Thresholds: 5 meters → 3, 4 → 2, 1 → 1; FU1/FU2/R1 → 2 of 2; BKR → 2 of 3; FU3 → 1 of 1.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer
from services.incidents.domain.meter_state import SignalIn

T0 = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)
SIZES = {"T11": 5, "T12": 5, "T21": 5, "T22": 5, "T31": 4, "T01": 1}
PARENT = {"T11": "F01-FU1", "T12": "F01-FU1", "T21": "F01-FU2", "T22": "F01-FU2",
          "T31": "F01-FU3", "T01": "F01-BKR"}  # fmt: skip
_ids = itertools.count(1)


def build_topology() -> Topology:
    """The feeder drawn in the module docstring."""
    devices = [
        Device("F01-BKR", "F01", None, "breaker"),
        Device("F01-R1", "F01", "F01-BKR", "recloser"),
        Device("F01-FU1", "F01", "F01-R1", "fuse"),
        Device("F01-FU2", "F01", "F01-R1", "fuse"),
        Device("F01-FU3", "F01", "F01-BKR", "fuse"),
    ]
    transformers = [Transformer(t, PARENT[t], 220, 1) for t in SIZES]
    customers = [Customer(c, "M" + c[1:], t, "residential") for t in SIZES for c in customers_of(t)]
    return Topology.build(
        [Feeder("F01", "Yunhe 1", "S1", "urban")], devices, transformers, customers
    )


def customers_of(*transformers: str) -> list[str]:
    """Customer ids on the given transformers, e.g. C-T11-1 … C-T11-5."""
    return [f"C-{t}-{i}" for t in transformers for i in range(1, SIZES[t] + 1)]


def at(seconds: float) -> datetime:
    """T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def sig(kind: str, who: str, seconds: float, signal_id: str | None = None, **data: Any) -> SignalIn:
    """A signal at T0+seconds for a customer (meter/call kinds) or a device (device kinds)."""
    device = kind.startswith("device_")
    return SignalIn(
        signal_id=signal_id or f"s{next(_ids)}",
        kind=kind,
        feeder_id="F01",
        occurred_at=at(seconds),
        source="device" if device else ("customer" if kind.startswith("call") else "meter"),
        device_id=who if device else None,
        customer_id=None if device else who,
        data=data,
    )
