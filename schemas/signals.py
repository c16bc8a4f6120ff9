"""Normalised, enriched signals published by ingest on ``grid.signals.v1``."""

from __future__ import annotations

from typing import Any, Literal

from schemas._base import Id, Timestamp, WireModel

SignalSource = Literal["meter", "device", "customer"]
SignalKind = Literal[
    "power_off",
    "power_on",
    "device_open",
    "device_close",
    "voltage",
    "sag",
    "swell",
    "call_no_power",
    "call_partial",
    "call_low_voltage",
    "call_flicker",
    "call_still_out",
    "survey",
]


class Signal(WireModel):
    signal_id: Id  # the source event_id, so every consumer can deduplicate
    source: SignalSource
    kind: SignalKind
    feeder_id: Id
    device_id: Id | None = None
    transformer_id: Id | None = None
    meter_id: Id | None = None
    customer_id: Id | None = None
    occurred_at: Timestamp
    received_at: Timestamp
    data: dict[str, Any] = {}
