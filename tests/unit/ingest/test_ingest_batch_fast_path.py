"""``normalise_batch`` (fast path, falling back to ``process``) produces exactly the
messages, dead letters and counts that ``process`` alone gives, message by message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import CUSTOMER_REPORTS, DEVICE_EVENTS, METER_EVENTS
from services.common.bus.base import OutMessage, Record
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.enrichment import Locations
from services.ingest.domain.normalise import SOURCE_TOPICS, process
from services.ingest.domain.results import DeadLetter, Signal
from services.ingest.handlers import DEFAULT_TOPICS, TopicNames, normalise_batch

NOW = datetime(2026, 7, 14, 0, 5, tzinfo=UTC)


def reference(
    records: list[Record], topology: Topology, topics: TopicNames
) -> tuple[list[OutMessage], list[DeadLetter], int]:
    """What the batch must produce: ``process`` per record, in order."""
    dedup = DedupWindow(1000)
    messages: list[OutMessage] = []
    dead: list[DeadLetter] = []
    duplicates = 0
    for r in records:
        out = process(
            r.value,
            r.topic,
            r.key,
            r.partition,
            r.offset,
            NOW,
            topology,
            dedup,
            topics.schema_of.get(r.topic),
        )
        if isinstance(out, Signal):
            messages.append(OutMessage(topics.signals, out.to_json(), out.key))
        elif isinstance(out, DeadLetter):
            messages.append(OutMessage(topics.dead_letter, out.to_json(), r.key))
            dead.append(out)
        else:
            duplicates += 1
    return messages, dead, duplicates


def assert_same(records: list[Record], topology: Topology, topics: TopicNames) -> None:
    dedup = DedupWindow(1000)
    batch = normalise_batch(records, NOW, Locations(topology), dedup, topics)
    messages, dead, duplicates = reference(records, topology, topics)
    assert batch.messages == messages
    assert batch.dead_letters == dead
    assert batch.duplicates == duplicates
    assert batch.signals == len(messages) - len(dead)
    assert sum(batch.dead_by_code.values()) == len(dead)


def records(topic: str, values: list[bytes]) -> list[Record]:
    return [Record(topic, 0, i, f"k{i}".encode(), v, 0) for i, v in enumerate(values)]


def dumps(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)


AT = "2026-07-14T08:02:11+08:00"


class TestFastPathMatchesProcess:
    def test_mixed_meter_batch(self, topology: Topology) -> None:
        base = {"meter_id": "M000001", "occurred_at": AT}
        values = [
            dumps({"event_id": "a", "type": "last_gasp", **base}),
            dumps(
                {"event_id": "b", "type": "power_restore", **base, "occurred_at": NOW.isoformat()}
            ),
            dumps(
                {
                    "event_id": "c",
                    "type": "voltage",
                    **base,
                    "interval_s": 900,
                    "v_avg": 1,
                    "v_min": 0.5,
                    "v_max": 2.25,
                }
            ),
            dumps({"event_id": "d", "type": "sag", **base, "magnitude_v": 150, "duration_ms": 3}),
            dumps({"event_id": "e", "type": "ping_response", **base, "energized": False}),
            dumps({"event_id": "a", "type": "last_gasp", **base}),  # duplicate
            dumps({"event_id": "f", "type": "last_gasp", **base, "meter_id": "M999"}),
            dumps(
                {
                    "event_id": "g",
                    "type": "last_gasp",
                    **base,
                    "occurred_at": "2026-07-01T00:00:00Z",
                }
            ),
            dumps({"event_id": "h", "type": "last_gasp", **base, "extra": 1}),
            dumps(
                {
                    "event_id": "i",
                    "type": "last_gasp",
                    **base,
                    "occurred_at": "2026-07-14 08:02:11Z",
                }
            ),
            b"{not json",
            b"x" * (64 * 1024 + 1),
            dumps(
                {
                    "event_id": "j",
                    "type": "last_gasp",
                    **base,
                    "occurred_at": "2026-07-14T00:04:59.123456Z",
                }
            ),
        ]
        assert_same(records(METER_EVENTS, values), topology, DEFAULT_TOPICS)

    def test_device_and_customer_batches(self, topology: Topology) -> None:
        devices = [
            dumps(
                {
                    "event_id": "d1",
                    "device_id": "F01-R1",
                    "occurred_at": AT,
                    "state": "open",
                    "lockout": True,
                }
            ),
            dumps(
                {
                    "event_id": "d2",
                    "device_id": "F01-XX",
                    "occurred_at": AT,
                    "state": "open",
                    "lockout": True,
                }
            ),
            dumps(
                {
                    "event_id": "d1",
                    "device_id": "F01-R1",
                    "occurred_at": AT,
                    "state": "closed",
                    "lockout": False,
                }
            ),
        ]
        reports = [
            dumps(
                {
                    "event_id": "c1",
                    "customer_id": "C000002",
                    "occurred_at": AT,
                    "channel": "sms",
                    "kind": "survey",
                    "score": 4,
                    "text": "ok",
                }
            ),
            dumps(
                {
                    "event_id": "c2",
                    "customer_id": "C000003",
                    "occurred_at": AT,
                    "channel": "app",
                    "kind": "no_power",
                    "incident_id": "I-1",
                }
            ),
            dumps(
                {
                    "event_id": "c3",
                    "customer_id": "C0",
                    "occurred_at": AT,
                    "channel": "app",
                    "kind": "no_power",
                }
            ),
        ]
        mixed = records(DEVICE_EVENTS, devices) + records(CUSTOMER_REPORTS, reports)
        assert_same(mixed, topology, DEFAULT_TOPICS)

    def test_prefixed_topics_use_the_design_schema(self, topology: Topology) -> None:
        topics = TopicNames.prefixed("bench-1.", SOURCE_TOPICS)
        value = dumps(
            {"event_id": "a", "meter_id": "M000003", "type": "last_gasp", "occurred_at": AT}
        )
        batch = records("bench-1." + METER_EVENTS, [value, value, b"[]"])
        assert_same(batch, topology, topics)
        out = normalise_batch(batch, NOW, topology, DedupWindow(10), topics)
        assert [m.topic for m in out.messages] == [topics.signals, topics.dead_letter]
        assert out.messages[0].key == b"F02"


near_events = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from(["e1", "e2", "e3", ""]) | st.integers(),
        "occurred_at": st.sampled_from(
            [AT, "2026-07-14T00:00:00Z", "2026-07-14T00:10:01Z", "2026-07-06T00:00:00Z", "x"]
        )
        | st.datetimes(
            min_value=datetime(2026, 7, 6),
            max_value=datetime(2026, 7, 15),
            timezones=st.timezones(),
        ).map(lambda d: d.isoformat()),
        "meter_id": st.sampled_from(["M000001", "M000003", "M9"]),
        "device_id": st.sampled_from(["F01-R1", "F02-BKR", "D9"]),
        "customer_id": st.sampled_from(["C000001", "C9"]),
        "type": st.sampled_from(["last_gasp", "voltage", "ping_response", "swell"]),
        "state": st.sampled_from(["open", "closed"]),
        "lockout": st.booleans(),
        "channel": st.sampled_from(["phone", "web"]),
        "kind": st.sampled_from(["no_power", "survey", "flicker"]),
    },
    optional={
        "score": st.integers(0, 6),
        "energized": st.booleans(),
        "interval_s": st.integers(0, 900),
        "v_avg": st.floats(-1, 300) | st.integers(-1, 300),
        "v_min": st.just(200.0),
        "v_max": st.just(230),
        "magnitude_v": st.just(250.5),
        "duration_ms": st.just(80),
    },
)
METER_KEYS = {
    "event_id",
    "meter_id",
    "type",
    "occurred_at",
    "energized",
    "interval_s",
    "v_avg",
    "v_min",
    "v_max",
    "magnitude_v",
    "duration_ms",
}
DEVICE_KEYS = {"event_id", "device_id", "occurred_at", "state", "lockout"}
REPORT_KEYS = {"event_id", "customer_id", "occurred_at", "channel", "kind", "score"}


def shaped(value: dict[str, Any], topic: str) -> dict[str, Any]:
    """Keep only the fields of ``topic``'s schema, so that many events reach the fast path."""
    keep = {METER_EVENTS: METER_KEYS, DEVICE_EVENTS: DEVICE_KEYS}.get(topic, REPORT_KEYS)
    return {k: v for k, v in value.items() if k in keep}


class TestFastPathProperties:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(
        items=st.lists(
            st.tuples(st.sampled_from(list(SOURCE_TOPICS)), near_events, st.booleans()),
            max_size=12,
        )
    )
    def test_any_batch_matches_process(
        self, topology: Topology, items: list[tuple[str, dict[str, Any], bool]]
    ) -> None:
        batch = [
            Record(topic, 1, i, b"k", json.dumps(shaped(v, topic) if keep else v).encode(), 0)
            for i, (topic, v, keep) in enumerate(items)
        ]
        assert_same(batch, topology, DEFAULT_TOPICS)

    @given(raw=st.binary(max_size=64), topic=st.sampled_from(list(SOURCE_TOPICS)))
    def test_arbitrary_bytes_match_process(
        self, topology: Topology, raw: bytes, topic: str
    ) -> None:
        assert_same([Record(topic, 0, 0, None, raw, 0)], topology, DEFAULT_TOPICS)


def test_window_edges_match_process(topology: Topology) -> None:
    edges = [NOW - timedelta(days=7), NOW + timedelta(minutes=5)]
    values = [
        dumps(
            {
                "event_id": f"w{i}{j}",
                "meter_id": "M000001",
                "type": "last_gasp",
                "occurred_at": (edge + timedelta(microseconds=d)).isoformat(),
            }
        )
        for i, edge in enumerate(edges)
        for j, d in enumerate((-1, 0, 1))
    ]
    assert_same(records(METER_EVENTS, values), topology, DEFAULT_TOPICS)
