"""Whatever arrives on a source topic, ``process`` answers with a signal, a dead letter or a
duplicate, and both outputs satisfy their published schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import CUSTOMER_REPORTS, DEVICE_EVENTS, METER_EVENTS, parse_dead_letter, parse_signal
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.normalise import process
from services.ingest.domain.results import DeadLetter, Duplicate, Signal

NOW = datetime(2026, 7, 14, 0, 5, tzinfo=UTC)
TOPICS = st.sampled_from([METER_EVENTS, DEVICE_EVENTS, CUSTOMER_REPORTS])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(),  # json.dumps writes NaN/Infinity: must be dead-lettered
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
timestamps = st.sampled_from(
    [
        "2026-07-14T08:02:11+08:00",
        "2026-07-14T00:00:00Z",
        "2026-07-14T08:02:11",
        "0001-01-01T00:00:00+08:00",
        "9999-12-31T23:59:59-14:00",
        "yesterday",
    ]
) | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
ids = st.sampled_from(["M000001", "M000003", "F01-R1", "F02-BKR", "C000002", "nope", ""])
# Nearly valid events: the right field names with arbitrary values, so that the later
# checks (time window, topology, mapping) are reached, not only the JSON parser.
near_events = st.fixed_dictionaries(
    {
        "event_id": st.text(max_size=5) | st.integers(),
        "occurred_at": timestamps,
    },
    optional={
        "meter_id": ids,
        "device_id": ids,
        "customer_id": ids,
        "type": st.sampled_from(
            ["last_gasp", "power_restore", "voltage", "sag", "swell", "ping_response", "other"]
        ),
        "state": st.sampled_from(["open", "closed", "x"]),
        "lockout": json_values,
        "channel": st.sampled_from(["phone", "app", "fax"]),
        "kind": st.sampled_from(["no_power", "survey", "flicker", "zzz"]),
        "score": json_values,
        "text": json_values,
        "incident_id": json_values,
        "energized": json_values,
        "interval_s": json_values,
        "v_avg": json_values,
        "v_min": json_values,
        "v_max": json_values,
        "magnitude_v": json_values,
        "duration_ms": json_values,
    },
)


def check(raw: bytes, topic: str, topology: Topology) -> None:
    out = process(raw, topic, b"k", 0, 7, NOW, topology, DedupWindow(4))
    assert isinstance(out, Signal | DeadLetter | Duplicate)
    if isinstance(out, Signal):
        assert parse_signal(out.to_json()).signal_id == out.signal_id
    elif isinstance(out, DeadLetter):
        assert parse_dead_letter(out.to_json()).error.code == out.code


class TestProcessNeverCrashes:
    @given(raw=st.binary(max_size=300), topic=TOPICS)
    def test_arbitrary_bytes(self, topology: Topology, raw: bytes, topic: str) -> None:
        check(raw, topic, topology)

    @given(value=json_values, topic=TOPICS)
    def test_arbitrary_json(self, topology: Topology, value: Any, topic: str) -> None:
        check(json.dumps(value).encode(), topic, topology)

    @settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
    @given(value=near_events, topic=TOPICS)
    def test_nearly_valid_events(
        self, topology: Topology, value: dict[str, Any], topic: str
    ) -> None:
        check(json.dumps(value).encode(), topic, topology)
