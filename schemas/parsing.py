"""Fast parse helpers for every wire format and the mapping of validation errors to
dead-letter reasons (code, message, JSON path).

Every ``parse_*`` helper raises only ``pydantic.ValidationError`` (invalid JSON included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.dead_letter import DeadLetter
from schemas.deliveries import Delivery
from schemas.events import CustomerReport, DeviceEvent, MeterEvent
from schemas.lifecycle import LifecycleEvent
from schemas.misc import AmiCommand, TopologyChanged
from schemas.signals import Signal
from schemas.topics import TOPICS

_METER: TypeAdapter[MeterEvent] = TypeAdapter(MeterEvent)
_DEVICE = TypeAdapter(DeviceEvent)
_REPORT = TypeAdapter(CustomerReport)
_SIGNAL = TypeAdapter(Signal)
_DEAD = TypeAdapter(DeadLetter)
_LIFECYCLE = TypeAdapter(LifecycleEvent)
_DELIVERY = TypeAdapter(Delivery)
_TOPOLOGY = TypeAdapter(TopologyChanged)
_AMI = TypeAdapter(AmiCommand)


def parse_meter_event(raw: bytes | str) -> MeterEvent:
    return _METER.validate_json(raw)


def parse_device_event(raw: bytes | str) -> DeviceEvent:
    return _DEVICE.validate_json(raw)


def parse_customer_report(raw: bytes | str) -> CustomerReport:
    return _REPORT.validate_json(raw)


def parse_signal(raw: bytes | str) -> Signal:
    return _SIGNAL.validate_json(raw)


def parse_dead_letter(raw: bytes | str) -> DeadLetter:
    return _DEAD.validate_json(raw)


def parse_lifecycle_event(raw: bytes | str) -> LifecycleEvent:
    return _LIFECYCLE.validate_json(raw)


def parse_delivery(raw: bytes | str) -> Delivery:
    return _DELIVERY.validate_json(raw)


def parse_topology_changed(raw: bytes | str) -> TopologyChanged:
    return _TOPOLOGY.validate_json(raw)


def parse_ami_command(raw: bytes | str) -> AmiCommand:
    return _AMI.validate_json(raw)


def parse_for_topic(topic: str, raw: bytes | str) -> Any:
    """Parse a value of ``topic``; KeyError for an unknown topic."""
    return TOPICS[topic].adapter.validate_json(raw)


@dataclass(frozen=True, slots=True)
class SchemaError:
    """Why a message was rejected, in the shape of a dead letter's ``error``."""

    code: str  # "invalid_json" or "schema"
    message: str
    path: str  # JSON path of the first error, "$" for the whole value

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "path": self.path}


_TAG_ERRORS = {"union_tag_invalid", "union_tag_not_found"}


def schema_error(exc: ValidationError) -> SchemaError:
    """Reduce a ValidationError to its first error: code, message and JSON path."""
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return SchemaError("invalid_json", first["msg"], "$")
    loc: tuple[int | str, ...] = tuple(first["loc"])
    if kind in _TAG_ERRORS:
        # pydantic reports a bad or missing discriminator at the union itself
        discriminator = "type"
        return SchemaError("schema", first["msg"], json_path((*loc, discriminator)))
    if exc.title.startswith("tagged-union[") and loc:
        loc = loc[1:]  # drop the tag pydantic prepends to errors inside a union member
    return SchemaError("schema", first["msg"], json_path(loc))


def json_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a JSON path: ("a", 0, "b") -> "$.a[0].b"."""
    parts = ["$"]
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item.isidentifier():
            parts.append(f".{item}")
        else:
            escaped = item.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
    return "".join(parts)
