"""A fast path for well-formed raw events that never contradicts the pydantic schemas.

Each ``fast_*`` function looks at a JSON-decoded value and returns the parsed event only
when it is certain pydantic would accept it with the same values: exact key sets, exact
JSON types (no bool for int, no float for int), the same bounds, and timestamps in the
plain RFC 3339 form ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)``. Anything else returns
None and goes through the schemas, which then decide and name the error. A differential
property test holds the two paths to the same answers.

Why: building the pydantic model and its timezone objects was most of the per-event cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ID_MAX = 200
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")


@dataclass(slots=True)  # not frozen: built once per event, frozen __init__ is slow
class Parsed:
    """A validated source event reduced to what a signal needs."""

    event_id: str
    subject_id: str  # meter, device or customer id
    occurred_at: datetime
    kind: str  # signal kind
    data: dict[str, Any]


def _id(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= ID_MAX


def _number(value: Any) -> bool:
    return (type(value) is float or type(value) is int) and value >= 0


def _timestamp(value: Any) -> datetime | None:
    if type(value) is not str or _TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


_METER_BASE = frozenset({"event_id", "meter_id", "type", "occurred_at"})
_METER_KEYS = {
    "last_gasp": _METER_BASE,
    "power_restore": _METER_BASE,
    "voltage": _METER_BASE | {"interval_s", "v_avg", "v_min", "v_max"},
    "sag": _METER_BASE | {"magnitude_v", "duration_ms"},
    "swell": _METER_BASE | {"magnitude_v", "duration_ms"},
    "ping_response": _METER_BASE | {"energized"},
}


def fast_meter(obj: Any) -> Parsed | None:
    """A meter event pydantic would accept, or None (then pydantic decides)."""
    if type(obj) is not dict:
        return None
    event_type = obj.get("type")
    keys = _METER_KEYS.get(event_type) if type(event_type) is str else None
    # _meter reads every key of ``keys`` and a missing one raises KeyError, so with as many
    # keys as expected the key sets are equal: cheaper than comparing them (a tenth of the
    # fast path's time).
    if keys is None or len(obj) != len(keys):
        return None
    try:
        return _meter(obj, event_type)
    except KeyError:
        return None


def _meter(obj: dict[str, Any], event_type: Any) -> Parsed | None:
    event_id, meter_id = obj["event_id"], obj["meter_id"]
    # _id inlined: two calls per event on the hottest path.
    if not (
        type(event_id) is str
        and 0 < len(event_id) <= ID_MAX
        and type(meter_id) is str
        and 0 < len(meter_id) <= ID_MAX
    ):
        return None
    occurred_at = _timestamp(obj["occurred_at"])
    if occurred_at is None:
        return None
    data: dict[str, Any]
    if event_type == "last_gasp":
        kind, data = "power_off", {}
    elif event_type == "power_restore":
        kind, data = "power_on", {}
    elif event_type == "voltage":
        interval_s, v_avg, v_min, v_max = (
            obj["interval_s"],
            obj["v_avg"],
            obj["v_min"],
            obj["v_max"],
        )
        if not (type(interval_s) is int and interval_s > 0):
            return None
        if not (_number(v_avg) and _number(v_min) and _number(v_max)):
            return None
        kind = "voltage"
        data = {
            "interval_s": interval_s,
            "v_avg": float(v_avg),
            "v_min": float(v_min),
            "v_max": float(v_max),
        }
    elif event_type == "ping_response":
        energized = obj["energized"]
        if type(energized) is not bool:
            return None
        kind, data = (
            ("power_on" if energized else "power_off"),
            {"ping": True, "energized": energized},
        )
    else:  # sag, swell
        magnitude_v, duration_ms = obj["magnitude_v"], obj["duration_ms"]
        if not (_number(magnitude_v) and type(duration_ms) is int and duration_ms >= 0):
            return None
        kind = str(event_type)
        data = {"magnitude_v": float(magnitude_v), "duration_ms": duration_ms}
    return Parsed(event_id, meter_id, occurred_at, kind, data)


_DEVICE_KEYS = frozenset({"event_id", "device_id", "occurred_at", "state", "lockout"})


def fast_device(obj: Any) -> Parsed | None:
    """A device event pydantic would accept, or None (then pydantic decides)."""
    if type(obj) is not dict or obj.keys() != _DEVICE_KEYS:
        return None
    event_id, device_id, state, lockout = (
        obj["event_id"],
        obj["device_id"],
        obj["state"],
        obj["lockout"],
    )
    if not (_id(event_id) and _id(device_id)) or type(lockout) is not bool:
        return None
    if state != "open" and state != "closed":
        return None
    occurred_at = _timestamp(obj["occurred_at"])
    if occurred_at is None:
        return None
    kind = "device_open" if state == "open" else "device_close"
    return Parsed(event_id, device_id, occurred_at, kind, {"lockout": lockout})


_REPORT_REQUIRED = frozenset({"event_id", "customer_id", "occurred_at", "channel", "kind"})
_REPORT_ALLOWED = _REPORT_REQUIRED | {"text", "score", "incident_id"}
_CHANNELS = frozenset({"phone", "app", "wechat", "sms", "web"})
CUSTOMER_KINDS: dict[str, str] = {
    "no_power": "call_no_power",
    "partial_power": "call_partial",
    "low_voltage": "call_low_voltage",
    "flicker": "call_flicker",
    "still_out": "call_still_out",
    "survey": "survey",
}


def fast_customer(obj: Any) -> Parsed | None:
    """A customer report pydantic would accept, or None (then pydantic decides)."""
    if type(obj) is not dict:
        return None
    keys = obj.keys()
    if not (keys >= _REPORT_REQUIRED and keys <= _REPORT_ALLOWED):
        return None
    event_id, customer_id, channel, report_kind = (
        obj["event_id"],
        obj["customer_id"],
        obj["channel"],
        obj["kind"],
    )
    if not (_id(event_id) and _id(customer_id)):
        return None
    if type(channel) is not str or channel not in _CHANNELS:
        return None
    kind = CUSTOMER_KINDS.get(report_kind) if type(report_kind) is str else None
    if kind is None:
        return None
    text, score, incident_id = obj.get("text"), obj.get("score"), obj.get("incident_id")
    if text is not None and type(text) is not str:
        return None
    if incident_id is not None and not _id(incident_id):
        return None
    if score is None:
        if report_kind == "survey":
            return None
    elif report_kind != "survey" or type(score) is not int or not 1 <= score <= 5:
        return None
    occurred_at = _timestamp(obj["occurred_at"])
    if occurred_at is None:
        return None
    data: dict[str, Any] = {"channel": channel}
    if text is not None:
        data["text"] = text
    if incident_id is not None:
        data["incident_id"] = incident_id
    if score is not None:
        data["score"] = score
    return Parsed(event_id, customer_id, occurred_at, kind, data)
