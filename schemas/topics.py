"""Topic names, their key and their value format (DESIGN section 3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from schemas.dead_letter import DeadLetter
from schemas.deliveries import Delivery
from schemas.events import CustomerReport, DeviceEvent, MeterEvent
from schemas.lifecycle import LifecycleEvent
from schemas.misc import AmiCommand, TopologyChanged
from schemas.signals import Signal

METER_EVENTS = "grid.meter-events.v1"
DEVICE_EVENTS = "grid.device-events.v1"
CUSTOMER_REPORTS = "grid.customer-reports.v1"
SIGNALS = "grid.signals.v1"
DEAD_LETTER = "grid.dead-letter.v1"
LIFECYCLE = "incidents.lifecycle.v1"
DELIVERIES = "notify.deliveries.v1"
TOPOLOGY_CHANGED = "topology.changed.v1"
AMI_COMMANDS = "ami.commands.v1"

TOPOLOGY_KEY = "topology"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its value type, how its key is derived, who produces it."""

    name: str
    value_type: Any  # a pydantic model class or an Annotated union
    title: str
    key_field: str | None  # field of the value holding the key; None -> ``fixed_key``
    key_description: str
    producers: tuple[str, ...]
    description: str
    fixed_key: str | None = None

    def key_for(self, value: Mapping[str, Any]) -> str | None:
        """The message key for a (JSON-decoded) value of this topic."""
        if self.key_field is None:
            return self.fixed_key
        key = value.get(self.key_field)
        return None if key is None else str(key)

    @property
    def adapter(self) -> TypeAdapter[Any]:
        return _adapter(self.name)


TOPICS: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(
            METER_EVENTS,
            MeterEvent,
            "MeterEvent",
            "meter_id",
            "meter id",
            ("ami_head_end",),
            "AMI meter events; `type` decides the other fields.",
        ),
        TopicSpec(
            DEVICE_EVENTS,
            DeviceEvent,
            "DeviceEvent",
            "device_id",
            "device id",
            ("scada",),
            "SCADA protective device operations.",
        ),
        TopicSpec(
            CUSTOMER_REPORTS,
            CustomerReport,
            "CustomerReport",
            "customer_id",
            "customer id",
            ("call_centre",),
            "Customer reports from the call centre, app and SMS replies.",
        ),
        TopicSpec(
            SIGNALS,
            Signal,
            "Signal",
            "feeder_id",
            "feeder id",
            ("ingest",),
            "Normalised, enriched signals; one feeder's evidence on one partition.",
        ),
        TopicSpec(
            DEAD_LETTER,
            DeadLetter,
            "DeadLetter",
            "key",
            "the rejected message's key",
            ("ingest", "incidents", "notify"),
            "Rejected input, with the reason.",
        ),
        TopicSpec(
            LIFECYCLE,
            LifecycleEvent,
            "LifecycleEvent",
            "incident_id",
            "incident id",
            ("incidents",),
            "Incident lifecycle events, in `seq` order per incident.",
        ),
        TopicSpec(
            DELIVERIES,
            Delivery,
            "Delivery",
            "customer_id",
            "customer id",
            ("notify",),
            "Notification delivery outcomes.",
        ),
        TopicSpec(
            TOPOLOGY_CHANGED,
            TopologyChanged,
            "TopologyChanged",
            None,
            'the constant "topology"',
            ("topology_loader",),
            "Topology version bump; every service refreshes its cache.",
            fixed_key=TOPOLOGY_KEY,
        ),
        TopicSpec(
            AMI_COMMANDS,
            AmiCommand,
            "AmiCommand",
            "meter_id",
            "meter id",
            ("incidents",),
            "Ping requests to an AMI head-end (optional).",
        ),
    )
}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _adapter(topic: str) -> TypeAdapter[Any]:
    # Built lazily: a TypeAdapter compiles a validator, which is wasted work for topics a
    # process never reads.
    adapter = _ADAPTERS.get(topic)
    if adapter is None:
        adapter = _ADAPTERS[topic] = TypeAdapter(TOPICS[topic].value_type)
    return adapter
