"""Turn one raw message of a source topic into a signal, a dead letter or a duplicate.

Checks run in a fixed order and the first failure names the dead letter's code:
``too_large`` (value over 64 KiB) → ``invalid_json`` → ``schema`` (with the JSON path) →
``timestamp_out_of_range`` (older than 7 days or more than 5 minutes ahead of the service
clock) → ``unknown_meter`` / ``unknown_device`` / ``unknown_customer`` → duplicate check →
mapping to a signal kind.

Mapping choices beyond the table in DESIGN section 3: a ``ping_response`` becomes
``power_on`` (energized) or ``power_off`` (not energized) with ``data.ping = true`` and
``data.energized``, so the incidents service can tell a polled answer from a spontaneous
last gasp; customer reports carry ``channel`` (and ``text`` / ``incident_id`` / ``score``
when present) in ``data``; voltage, sag and swell carry their measurements in ``data``
and device operations ``lockout``.

Validation is the pydantic schemas of ``schemas.events``; well-formed events take an
equivalent fast path (:mod:`fast_parse`). Duplicates are keyed by source and
``event_id``: two sources may reuse each other's ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import (
    CustomerReport,
    DeviceEvent,
    MeterEvent,
    PingResponse,
    Sag,
    Swell,
    VoltageReading,
)
from schemas.parsing import (
    parse_customer_report,
    parse_device_event,
    parse_meter_event,
    schema_error,
)
from schemas.topics import CUSTOMER_REPORTS, DEVICE_EVENTS, METER_EVENTS
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.enrichment import Location, Locations
from services.ingest.domain.fast_parse import (
    CUSTOMER_KINDS,
    Parsed,
    fast_customer,
    fast_device,
    fast_meter,
)
from services.ingest.domain.results import DeadLetter, Duplicate, Signal

MAX_VALUE_BYTES = 64 * 1024
MAX_AGE = timedelta(days=7)
MAX_AHEAD = timedelta(minutes=5)
SOURCE_TOPICS: tuple[str, ...] = (METER_EVENTS, DEVICE_EVENTS, CUSTOMER_REPORTS)

Outcome = Signal | DeadLetter | Duplicate

METER_KINDS: dict[str, str] = {
    "last_gasp": "power_off",
    "power_restore": "power_on",
    "voltage": "voltage",
    "sag": "sag",
    "swell": "swell",
}


class _Rejected(Exception):  # internal control flow; never escapes process()
    def __init__(self, code: str, message: str, path: str | None) -> None:
        super().__init__(message)
        self.code, self.message, self.path = code, message, path


def process(
    raw: bytes,
    topic: str,
    key: bytes | None,
    partition: int,
    offset: int,
    now: datetime,
    topology: Topology | Locations,
    dedup: DedupWindow,
    schema_topic: str | None = None,
) -> Outcome:
    """Normalise one message of ``topic`` received at ``now`` (timezone-aware).

    Never raises for any input bytes: every rejection is a :class:`DeadLetter`. A new
    event id is marked *pending* in ``dedup``; the caller commits or rolls back the window
    with the batch. Pass a :class:`Locations` of the topology to memoise lookups across
    calls (the batch pipeline does). ``schema_topic`` names the DESIGN topic whose format
    ``topic`` carries when the two differ (prefixed topics of a benchmark or test run).
    """
    locations = topology if isinstance(topology, Locations) else Locations(topology)
    try:
        return _process(raw, schema_topic or topic, now, locations, dedup)
    except _Rejected as rejected:
        return DeadLetter(
            topic=topic,
            partition=partition,
            offset=offset,
            raw_key=key,
            raw_value=raw,
            code=rejected.code,
            message=rejected.message,
            path=rejected.path,
            failed_at=now.astimezone(UTC),
        )


def _process(
    raw: bytes, topic: str, now: datetime, locations: Locations, dedup: DedupWindow
) -> Outcome:
    if len(raw) > MAX_VALUE_BYTES:
        raise _Rejected("too_large", f"value is {len(raw)} bytes, over {MAX_VALUE_BYTES}", "$")
    route = _ROUTES.get(topic)
    if route is None:
        raise _Rejected("schema", f"no input schema for topic {topic!r}", "$")
    try:
        # Also guards the schema path: pydantic's JSON parser accepts NaN and Infinity,
        # the wire format is strict JSON.
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Rejected("invalid_json", str(exc), "$") from None
    event = route.fast(obj)
    if event is None:
        try:
            model = route.parse(raw)
        except ValidationError as exc:
            error = schema_error(exc)
            raise _Rejected(error.code, error.message, error.path) from None
        event = route.from_model(model)
    occurred_at = event.occurred_at
    oldest, latest, now_utc = _window(now)
    # Compared before converting: an absurd offset at year 1 or 9999 cannot be converted.
    if occurred_at < oldest or occurred_at > latest:
        raise _Rejected(
            "timestamp_out_of_range",
            f"occurred_at {occurred_at.isoformat()} is older than 7 days or more than "
            f"5 minutes ahead of {now_utc.isoformat()}",
            "$.occurred_at",
        )
    loc = route.locate(locations, event.subject_id)
    if loc is None:
        raise _Rejected(
            route.unknown_code,
            f"{route.source} {event.subject_id!r} is not in the topology",
            route.subject_path,
        )
    if not dedup.check_and_add(route.dedup_prefix + event.event_id):
        return Duplicate(event.event_id, route.source)
    return _signal(event, route.source, loc, now_utc)


# A batch shares one ``now``; recomputing its bounds per message was measurable.
_last_window: tuple[datetime, datetime, datetime, datetime] | None = None


def _window(now: datetime) -> tuple[datetime, datetime, datetime]:
    """(oldest accepted, latest accepted, now in UTC); computed once per batch's ``now``."""
    global _last_window
    cached = _last_window
    if cached is None or cached[0] is not now:
        cached = _last_window = (now, now - MAX_AGE, now + MAX_AHEAD, now.astimezone(UTC))
    return cached[1], cached[2], cached[3]


def meter_event(event: MeterEvent) -> Parsed:
    """A validated meter event as a signal's kind and ``data``."""
    data: dict[str, Any]
    if isinstance(event, PingResponse):
        kind = "power_on" if event.energized else "power_off"
        data = {"ping": True, "energized": event.energized}
    elif isinstance(event, VoltageReading):
        kind = "voltage"
        data = {
            "interval_s": event.interval_s,
            "v_avg": event.v_avg,
            "v_min": event.v_min,
            "v_max": event.v_max,
        }
    elif isinstance(event, Sag | Swell):
        kind, data = (
            event.type,
            {"magnitude_v": event.magnitude_v, "duration_ms": event.duration_ms},
        )
    else:
        kind, data = METER_KINDS[event.type], {}
    return Parsed(event.event_id, event.meter_id, event.occurred_at, kind, data)


def device_event(event: DeviceEvent) -> Parsed:
    """A validated device event as a signal's kind and ``data``."""
    kind = "device_open" if event.state == "open" else "device_close"
    return Parsed(
        event.event_id, event.device_id, event.occurred_at, kind, {"lockout": event.lockout}
    )


def customer_report(report: CustomerReport) -> Parsed:
    """A validated customer report as a signal's kind and ``data`` (channel plus what the
    report carries)."""
    data: dict[str, Any] = {"channel": report.channel}
    if report.text is not None:
        data["text"] = report.text
    if report.incident_id is not None:
        data["incident_id"] = report.incident_id
    if report.score is not None:
        data["score"] = report.score
    return Parsed(
        report.event_id, report.customer_id, report.occurred_at, CUSTOMER_KINDS[report.kind], data
    )


def _signal(event: Parsed, source: str, loc: Location, now: datetime) -> Signal:
    occurred_at = event.occurred_at
    if occurred_at.tzinfo is not UTC:
        occurred_at = occurred_at.astimezone(UTC)
    return Signal(
        signal_id=event.event_id,
        source=source,
        kind=event.kind,
        feeder_id=loc.feeder_id,
        occurred_at=occurred_at,
        received_at=now,
        device_id=loc.device_id,
        transformer_id=loc.transformer_id,
        meter_id=loc.meter_id,
        customer_id=loc.customer_id,
        data=event.data,
    )


@dataclass(frozen=True, slots=True)
class _Route:
    source: str
    fast: Callable[[Any], Parsed | None]
    parse: Callable[[bytes], Any]
    from_model: Callable[[Any], Parsed]
    locate: Callable[[Locations, str], Location | None]
    unknown_code: str
    subject_path: str

    @property
    def dedup_prefix(self) -> str:
        return self.source + ":"


_ROUTES: dict[str, _Route] = {
    METER_EVENTS: _Route(
        "meter",
        fast_meter,
        parse_meter_event,
        meter_event,
        Locations.meter,
        "unknown_meter",
        "$.meter_id",
    ),
    DEVICE_EVENTS: _Route(
        "device",
        fast_device,
        parse_device_event,
        device_event,
        Locations.device,
        "unknown_device",
        "$.device_id",
    ),
    CUSTOMER_REPORTS: _Route(
        "customer",
        fast_customer,
        parse_customer_report,
        customer_report,
        Locations.customer,
        "unknown_customer",
        "$.customer_id",
    ),
}
