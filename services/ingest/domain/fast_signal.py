"""The hot path of :func:`~services.ingest.domain.normalise.process` for a whole batch.

A well-formed, known, in-window event goes straight from raw bytes to the signal's key and
JSON value: no :class:`~services.ingest.domain.results.Signal` object, no exception
machinery, the batch's time window and feeder keys computed once. Anything this path is not
certain about (too large, not JSON, not the exact schema shape, out of the time window,
unknown in the topology) is answered with None, and ``process`` — the one place that knows
the dead-letter codes and JSON paths — decides it. Nothing is marked in the dedup window
before the answer is certain, so handing a message over to ``process`` is side-effect free.

The value is byte-for-byte what ``process(...).to_json()`` gives (a unit test holds them
together).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from schemas.topics import CUSTOMER_REPORTS, DEVICE_EVENTS, METER_EVENTS
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.enrichment import Location, Locations
from services.ingest.domain.fast_parse import Parsed, fast_customer, fast_device, fast_meter
from services.ingest.domain.normalise import MAX_AGE, MAX_AHEAD, MAX_VALUE_BYTES

DUPLICATE: Final = False  # the answer for an event id already seen

_Parse = Callable[[Any], Parsed | None]
_Route = tuple[str, str, _Parse, Callable[[Locations, str], Location | None]]
# schema topic → (source, dedup prefix, fast parser, locator); as normalise's routes.
_ROUTES: dict[str, _Route] = {
    METER_EVENTS: ("meter", "meter:", fast_meter, Locations.meter),
    DEVICE_EVENTS: ("device", "device:", fast_device, Locations.device),
    CUSTOMER_REPORTS: ("customer", "customer:", fast_customer, Locations.customer),
}


class FastSignals:
    """One batch's fast path: construct with the batch's ``now``, then call
    :meth:`signal` per message."""

    __slots__ = ("_oldest", "_latest", "_now_utc", "_locations", "_dedup", "_keys")

    def __init__(self, now: datetime, locations: Locations, dedup: DedupWindow) -> None:
        # In UTC, as every event time is converted first: comparing datetimes that share
        # one tzinfo compares their fields, while mixed offsets cost two utcoffset() calls
        # and a subtraction per comparison (a tenth of the per-event CPU).
        self._now_utc = now.astimezone(UTC)
        self._oldest = self._now_utc - MAX_AGE
        self._latest = self._now_utc + MAX_AHEAD
        self._locations = locations
        self._dedup = dedup
        self._keys: dict[str, bytes] = {}  # feeder id → message key

    def signal(self, raw: bytes, schema_topic: str) -> tuple[bytes, bytes] | Literal[False] | None:
        """The signal's (key, value) for a message of ``schema_topic`` (a DESIGN source
        topic), :data:`DUPLICATE` (False) for an event id already in the window (the new id
        is marked pending, as ``process`` does), or None: let ``process`` decide."""
        route = _ROUTES.get(schema_topic)
        if route is None or len(raw) > MAX_VALUE_BYTES:
            return None
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        source, prefix, parse, locate = route
        event = parse(obj)
        if event is None:
            return None
        occurred_at = event.occurred_at
        if occurred_at.tzinfo is not UTC:
            occurred_at = occurred_at.astimezone(UTC)
        if occurred_at < self._oldest or occurred_at > self._latest:
            return None
        loc = locate(self._locations, event.subject_id)
        if loc is None:
            return None
        if not self._dedup.check_and_add(prefix + event.event_id):
            return DUPLICATE
        feeder_id = loc.feeder_id
        key = self._keys.get(feeder_id)
        if key is None:
            key = self._keys[feeder_id] = feeder_id.encode("utf-8")
        # The same keys in the same order as Signal.as_dict.
        return key, orjson.dumps(
            {
                "signal_id": event.event_id,
                "source": source,
                "kind": event.kind,
                "feeder_id": feeder_id,
                "device_id": loc.device_id,
                "transformer_id": loc.transformer_id,
                "meter_id": loc.meter_id,
                "customer_id": loc.customer_id,
                "occurred_at": occurred_at,
                "received_at": self._now_utc,
                "data": event.data,
            }
        )
