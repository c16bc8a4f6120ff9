"""Where an event sits in the network: meter, customer, transformer, device and feeder.

Pure lookups on a :class:`~services.common.topology.model.Topology`; a miss returns None
so the caller can dead-letter the event with ``unknown_meter`` / ``unknown_device`` /
``unknown_customer``.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.topology.model import Topology


@dataclass(frozen=True, slots=True)
class Location:
    """The network position an event refers to; ids not implied by the source are None."""

    feeder_id: str
    device_id: str
    transformer_id: str | None = None
    meter_id: str | None = None
    customer_id: str | None = None


def locate_meter(topology: Topology, meter_id: str) -> Location | None:
    """Meter → customer → transformer → device → feeder, or None for an unknown meter."""
    customer_id = topology.customer_by_meter.get(meter_id)
    if customer_id is None:
        return None
    return _via_customer(topology, customer_id, meter_id)


def locate_customer(topology: Topology, customer_id: str) -> Location | None:
    """Customer → meter, transformer, device, feeder, or None for an unknown customer."""
    customer = topology.customers.get(customer_id)
    if customer is None:
        return None
    return _via_customer(topology, customer_id, customer.meter)


def locate_device(topology: Topology, device_id: str) -> Location | None:
    """Device → feeder, or None for an unknown device."""
    device = topology.devices.get(device_id)
    if device is None:
        return None
    return Location(feeder_id=device.feeder, device_id=device_id)


def _via_customer(topology: Topology, customer_id: str, meter_id: str) -> Location | None:
    # A loaded topology has no dangling references; the None guards keep a half-built
    # cache (tests, a racing reload) from raising KeyError in the hot path.
    customer = topology.customers.get(customer_id)
    if customer is None:
        return None
    transformer = topology.transformers.get(customer.transformer)
    if transformer is None:
        return None
    device = topology.devices.get(transformer.device)
    if device is None:
        return None
    return Location(
        feeder_id=device.feeder,
        device_id=device.id,
        transformer_id=transformer.id,
        meter_id=meter_id,
        customer_id=customer_id,
    )


class Locations:
    """Memoised lookups on one topology version: a meter's or customer's location is
    resolved once (four dictionary lookups) and then served from a single dictionary.
    Misses are not memoised, so hostile ids cannot grow the memo."""

    __slots__ = ("topology", "_meters", "_customers", "_devices")

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._meters: dict[str, Location] = {}
        self._customers: dict[str, Location] = {}
        self._devices: dict[str, Location] = {}

    def prime(self) -> Locations:
        """Resolve every meter now (a reload, off the hot path) rather than on first use."""
        for customer in self.topology.customers.values():
            loc = _via_customer(self.topology, customer.id, customer.meter)
            if loc is not None:
                self._meters[customer.meter] = loc
                self._customers[customer.id] = loc
        return self

    def meter(self, meter_id: str) -> Location | None:
        """As :func:`locate_meter`."""
        loc = self._meters.get(meter_id)
        if loc is None:
            loc = locate_meter(self.topology, meter_id)
            if loc is not None:
                self._meters[meter_id] = loc
        return loc

    def customer(self, customer_id: str) -> Location | None:
        """As :func:`locate_customer`."""
        loc = self._customers.get(customer_id)
        if loc is None:
            loc = locate_customer(self.topology, customer_id)
            if loc is not None:
                self._customers[customer_id] = loc
        return loc

    def device(self, device_id: str) -> Location | None:
        """As :func:`locate_device`."""
        loc = self._devices.get(device_id)
        if loc is None:
            loc = locate_device(self.topology, device_id)
            if loc is not None:
                self._devices[device_id] = loc
        return loc
