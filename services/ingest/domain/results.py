"""What normalising one raw message yields: a signal, a dead letter or a duplicate."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

SERVICE = "ingest"


# Not frozen: a frozen dataclass's __init__ (object.__setattr__ per field) tripled the
# construction cost of the one object built per event. Treat instances as immutable.
@dataclass(slots=True)
class Signal:
    """A normalised, enriched signal for ``grid.signals.v1`` (DESIGN section 3)."""

    signal_id: str
    source: str
    kind: str
    feeder_id: str
    occurred_at: datetime
    received_at: datetime
    device_id: str | None = None
    transformer_id: str | None = None
    meter_id: str | None = None
    customer_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        """The message key: the feeder id, so one feeder's evidence stays ordered."""
        return self.feeder_id.encode("utf-8")

    def as_dict(self) -> dict[str, Any]:
        """The wire shape; timestamps are UTC datetimes (serialised RFC 3339)."""
        return {
            "signal_id": self.signal_id,
            "source": self.source,
            "kind": self.kind,
            "feeder_id": self.feeder_id,
            "device_id": self.device_id,
            "transformer_id": self.transformer_id,
            "meter_id": self.meter_id,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at,
            "received_at": self.received_at,
            "data": self.data,
        }

    def to_json(self) -> bytes:
        """The message value (UTF-8 JSON)."""
        # A plain dict serialises faster with orjson than the dataclass itself.
        return orjson.dumps(self.as_dict())


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message with its reason (DESIGN section 3)."""

    topic: str
    partition: int
    offset: int
    raw_key: bytes | None
    raw_value: bytes
    code: str
    message: str
    path: str | None
    failed_at: datetime
    service: str = SERVICE

    @property
    def key(self) -> str | None:
        """The original key as text (undecodable bytes escaped, never dropped)."""
        if self.raw_key is None:
            return None
        return self.raw_key.decode("utf-8", "backslashreplace")

    @property
    def value_and_encoding(self) -> tuple[str, str | None]:
        """The raw value as text when it is valid UTF-8, else base64 with its encoding."""
        return encode_value(self.raw_value)

    def as_dict(self) -> dict[str, Any]:
        """The wire shape of ``grid.dead-letter.v1``."""
        value, encoding = self.value_and_encoding
        out: dict[str, Any] = {
            "service": self.service,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "value": value,
            "error": {"code": self.code, "message": self.message, "path": self.path},
            "failed_at": self.failed_at,
        }
        if encoding is not None:
            out["encoding"] = encoding
        return out

    def to_json(self) -> bytes:
        """The message value (UTF-8 JSON)."""
        return orjson.dumps(self.as_dict())


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A message whose event id was already turned into a signal recently."""

    signal_id: str
    source: str


def encode_value(raw: bytes) -> tuple[str, str | None]:
    """(text, None) for valid UTF-8 without lone surrogates, else (base64, "base64")."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def decode_value(value: str, encoding: str | None) -> bytes:
    """The original bytes of a stored dead letter's value."""
    if encoding == "base64":
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("dead letter value is not valid base64") from exc
    return value.encode("utf-8")
