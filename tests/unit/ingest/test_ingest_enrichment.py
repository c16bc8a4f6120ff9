from __future__ import annotations

from services.common.topology.model import Topology
from services.ingest.domain.enrichment import (
    Location,
    Locations,
    locate_customer,
    locate_device,
    locate_meter,
)


class TestEnrichment:
    def test_meter_resolves_through_customer_transformer_and_device(
        self, topology: Topology
    ) -> None:
        assert locate_meter(topology, "M000003") == Location(
            feeder_id="F02",
            device_id="F02-BKR",
            transformer_id="T0002",
            meter_id="M000003",
            customer_id="C000003",
        )

    def test_customer_and_meter_give_the_same_location(self, topology: Topology) -> None:
        assert locate_customer(topology, "C000002") == locate_meter(topology, "M000002")

    def test_device_resolves_to_its_feeder_only(self, topology: Topology) -> None:
        assert locate_device(topology, "F01-R1") == Location("F01", "F01-R1")

    def test_unknown_ids_resolve_to_none(self, topology: Topology) -> None:
        assert locate_meter(topology, "C000001") is None  # a customer id is not a meter id
        assert locate_customer(topology, "M000001") is None
        assert locate_device(topology, "T0001") is None

    def test_memoised_and_primed_lookups_match_the_plain_ones(self, topology: Topology) -> None:
        lazy, primed = Locations(topology), Locations(topology).prime()
        for meter in ("M000001", "M000002", "M000003", "nope"):
            assert lazy.meter(meter) == primed.meter(meter) == locate_meter(topology, meter)
        for customer in ("C000001", "C000003", "nope"):
            assert primed.customer(customer) == locate_customer(topology, customer)
        assert primed.device("F01-BKR") == locate_device(topology, "F01-BKR")
