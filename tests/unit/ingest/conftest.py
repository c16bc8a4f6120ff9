"""Fixtures for ingest unit tests: a tiny topology (two feeders, three customers)."""

from __future__ import annotations

import pytest

from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer


@pytest.fixture(scope="session")
def topology() -> Topology:
    return small_topology()


def small_topology() -> Topology:
    return Topology.build(
        feeders=[Feeder("F01", "Yunhe 10kV #1", "S1", "urban"), Feeder("F02", "n2", "S1", "rural")],
        devices=[
            Device("F01-BKR", "F01", None, "breaker"),
            Device("F01-R1", "F01", "F01-BKR", "recloser"),
            Device("F02-BKR", "F02", None, "breaker"),
        ],
        transformers=[
            Transformer("T0001", "F01-R1", 220, 1),
            Transformer("T0002", "F02-BKR", 220, 1),
        ],
        customers=[
            Customer("C000001", "M000001", "T0001", "residential"),
            Customer("C000002", "M000002", "T0001", "commercial"),
            Customer("C000003", "M000003", "T0002", "residential"),
        ],
    )
