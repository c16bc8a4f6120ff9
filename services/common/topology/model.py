"""The network topology of DESIGN section 2, as immutable values with lookup indexes.

A tree per feeder: feeder head device → protective devices → transformers → meters (one
customer each). Pure data: no I/O. Built by the loader (``loader.py``) from JSON or CSV,
stored in schema ``topology`` and cached by every service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Area = Literal["urban", "rural", "remote"]
DeviceKind = Literal["breaker", "recloser", "sectionaliser", "fuse", "switch"]
CustomerClass = Literal["residential", "commercial", "industrial", "public"]
CHANNELS: tuple[str, ...] = ("sms", "wechat", "email", "webhook")


@dataclass(frozen=True, slots=True)
class Feeder:
    id: str
    name: str
    substation: str
    area: Area


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    feeder: str
    parent: str | None
    kind: DeviceKind


@dataclass(frozen=True, slots=True)
class Transformer:
    id: str
    device: str
    nominal_v: float
    phases: int
    area: Area | None = None


@dataclass(frozen=True, slots=True)
class Contacts:
    sms: str | None = None
    email: str | None = None
    wechat: str | None = None
    webhook: str | None = None

    def first_reachable(self) -> tuple[str, str] | None:
        """(channel, address) of the first contact in the order sms, wechat, email, webhook."""
        for channel in CHANNELS:
            address = getattr(self, channel)
            if address:
                return channel, address
        return None


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    meter: str
    transformer: str
    class_: CustomerClass
    critical: bool = False
    member: bool = False
    language: str = "zh-CN"
    quiet_hours: str | None = None
    contacts: Contacts = field(default_factory=Contacts)


@dataclass(slots=True)
class Topology:
    """A validated topology with the indexes every service needs."""

    feeders: dict[str, Feeder]
    devices: dict[str, Device]
    transformers: dict[str, Transformer]
    customers: dict[str, Customer]
    version: int = 0
    customer_by_meter: dict[str, str] = field(init=False)
    device_children: dict[str, list[str]] = field(init=False)
    transformers_by_device: dict[str, list[str]] = field(init=False)
    customers_by_transformer: dict[str, list[str]] = field(init=False)
    feeder_head: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.customer_by_meter = {c.meter: c.id for c in self.customers.values()}
        self.device_children = {d: [] for d in self.devices}
        self.feeder_head = {}
        for d in self.devices.values():
            if d.parent is None:
                self.feeder_head[d.feeder] = d.id
            else:
                self.device_children[d.parent].append(d.id)
        self.transformers_by_device = {d: [] for d in self.devices}
        for t in self.transformers.values():
            self.transformers_by_device[t.device].append(t.id)
        self.customers_by_transformer = {t: [] for t in self.transformers}
        for c in self.customers.values():
            self.customers_by_transformer[c.transformer].append(c.id)

    @classmethod
    def build(
        cls,
        feeders: Iterable[Feeder],
        devices: Iterable[Device],
        transformers: Iterable[Transformer],
        customers: Iterable[Customer],
        version: int = 0,
    ) -> Topology:
        return cls(
            feeders={f.id: f for f in feeders},
            devices={d.id: d for d in devices},
            transformers={t.id: t for t in transformers},
            customers={c.id: c for c in customers},
            version=version,
        )

    # --- lookups -------------------------------------------------------------------------
    def area_of_transformer(self, transformer_id: str) -> Area:
        t = self.transformers[transformer_id]
        return t.area or self.feeders[self.devices[t.device].feeder].area

    def feeder_of_device(self, device_id: str) -> str:
        return self.devices[device_id].feeder

    def device_path(self, device_id: str) -> list[str]:
        """Devices from ``device_id`` up to the feeder head, inclusive."""
        path: list[str] = []
        current: str | None = device_id
        while current is not None:
            path.append(current)
            current = self.devices[current].parent
        return path

    def is_downstream(self, device_id: str, of_device: str) -> bool:
        """True when ``device_id`` is ``of_device`` or lies below it."""
        return of_device in self.device_path(device_id)

    def devices_below(self, device_id: str) -> Iterator[str]:
        """``device_id`` and every device below it, depth first."""
        stack = [device_id]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(self.device_children[current])

    def transformers_below(self, device_id: str) -> Iterator[str]:
        for d in self.devices_below(device_id):
            yield from self.transformers_by_device[d]

    def customers_below(self, device_id: str) -> Iterator[str]:
        for t in self.transformers_below(device_id):
            yield from self.customers_by_transformer[t]
