from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas import CUSTOMER_REPORTS, DEVICE_EVENTS, METER_EVENTS, parse_dead_letter, parse_signal
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.normalise import process
from services.ingest.domain.results import DeadLetter, Duplicate, Signal

NOW = datetime(2026, 7, 14, 0, 5, tzinfo=UTC)
OCCURRED = "2026-07-14T08:02:11+08:00"


def meter(event_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": "m-1",
        "meter_id": "M000001",
        "type": event_type,
        "occurred_at": OCCURRED,
        **extra,
    }


def device(state: str, lockout: bool = False, device_id: str = "F01-R1") -> dict[str, Any]:
    return {
        "event_id": "d-1",
        "device_id": device_id,
        "occurred_at": OCCURRED,
        "state": state,
        "lockout": lockout,
    }


def report(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": "c-1",
        "customer_id": "C000002",
        "occurred_at": OCCURRED,
        "channel": "phone",
        "kind": kind,
        **extra,
    }


def run(
    topic: str, value: dict[str, Any] | bytes, topology: Topology, dedup: DedupWindow | None = None
) -> Signal | DeadLetter | Duplicate:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    window = DedupWindow(100) if dedup is None else dedup
    return process(raw, topic, b"K1", 3, 42, NOW, topology, window)


def signal_of(topic: str, value: dict[str, Any], topology: Topology) -> Signal:
    out = run(topic, value, topology)
    assert isinstance(out, Signal), out
    wire = parse_signal(out.to_json())  # every signal satisfies the published schema
    assert wire.signal_id == value["event_id"]
    return out


def dead_of(topic: str, value: dict[str, Any] | bytes, topology: Topology) -> DeadLetter:
    out = run(topic, value, topology)
    assert isinstance(out, DeadLetter), out
    wire = parse_dead_letter(out.to_json())
    assert (wire.service, wire.topic, wire.partition, wire.offset, wire.key) == (
        "ingest",
        topic,
        3,
        42,
        "K1",
    )
    return out


class TestMeterMapping:
    @pytest.mark.parametrize(
        ("event", "kind", "data"),
        [
            (meter("last_gasp"), "power_off", {}),
            (meter("power_restore"), "power_on", {}),
            (
                meter("voltage", interval_s=900, v_avg=205.1, v_min=199.0, v_max=210.2),
                "voltage",
                {"interval_s": 900, "v_avg": 205.1, "v_min": 199.0, "v_max": 210.2},
            ),
            (
                meter("sag", magnitude_v=150.0, duration_ms=120),
                "sag",
                {"magnitude_v": 150.0, "duration_ms": 120},
            ),
            (
                meter("swell", magnitude_v=250.0, duration_ms=80),
                "swell",
                {"magnitude_v": 250.0, "duration_ms": 80},
            ),
            (meter("ping_response", energized=True), "power_on", {"ping": True, "energized": True}),
            (
                meter("ping_response", energized=False),
                "power_off",
                {"ping": True, "energized": False},
            ),
        ],
    )
    def test_meter_event_maps_to_kind_and_data(
        self, topology: Topology, event: dict[str, Any], kind: str, data: dict[str, Any]
    ) -> None:
        sig = signal_of(METER_EVENTS, event, topology)
        assert (sig.kind, sig.data, sig.source) == (kind, data, "meter")

    def test_meter_is_enriched_up_to_the_feeder(self, topology: Topology) -> None:
        sig = signal_of(METER_EVENTS, meter("last_gasp"), topology)
        assert (
            sig.feeder_id,
            sig.device_id,
            sig.transformer_id,
            sig.meter_id,
            sig.customer_id,
        ) == ("F01", "F01-R1", "T0001", "M000001", "C000001")
        assert sig.key == b"F01"

    def test_times_are_utc_and_received_at_is_the_service_clock(self, topology: Topology) -> None:
        sig = signal_of(METER_EVENTS, meter("last_gasp"), topology)
        assert sig.occurred_at == datetime(2026, 7, 14, 0, 2, 11, tzinfo=UTC)
        assert sig.occurred_at.utcoffset() == timedelta(0)
        assert sig.received_at == NOW
        assert orjson.loads(sig.to_json())["occurred_at"] == "2026-07-14T00:02:11+00:00"


class TestDeviceMapping:
    @pytest.mark.parametrize(
        ("state", "lockout", "kind"),
        [
            ("open", True, "device_open"),
            ("open", False, "device_open"),
            ("closed", False, "device_close"),
        ],
    )
    def test_device_state_maps_to_kind_with_lockout(
        self, topology: Topology, state: str, lockout: bool, kind: str
    ) -> None:
        sig = signal_of(DEVICE_EVENTS, device(state, lockout), topology)
        assert (sig.kind, sig.data, sig.source) == (kind, {"lockout": lockout}, "device")
        assert (sig.feeder_id, sig.device_id, sig.transformer_id, sig.customer_id) == (
            "F01",
            "F01-R1",
            None,
            None,
        )


class TestCustomerMapping:
    @pytest.mark.parametrize(
        ("kind", "signal_kind"),
        [
            ("no_power", "call_no_power"),
            ("partial_power", "call_partial"),
            ("low_voltage", "call_low_voltage"),
            ("flicker", "call_flicker"),
            ("still_out", "call_still_out"),
        ],
    )
    def test_report_kind_maps_to_call_kind(
        self, topology: Topology, kind: str, signal_kind: str
    ) -> None:
        sig = signal_of(CUSTOMER_REPORTS, report(kind, text="lights out"), topology)
        assert (sig.kind, sig.source) == (signal_kind, "customer")
        assert sig.data == {"channel": "phone", "text": "lights out"}
        assert (
            sig.feeder_id,
            sig.device_id,
            sig.transformer_id,
            sig.meter_id,
            sig.customer_id,
        ) == ("F01", "F01-R1", "T0001", "M000002", "C000002")

    def test_survey_carries_score_incident_and_text(self, topology: Topology) -> None:
        sig = signal_of(
            CUSTOMER_REPORTS,
            report("survey", score=4, incident_id="INC-1", text="quick fix"),
            topology,
        )
        assert sig.kind == "survey"
        assert sig.data == {
            "channel": "phone",
            "score": 4,
            "incident_id": "INC-1",
            "text": "quick fix",
        }


class TestDeadLetters:
    def test_value_over_64_kib_is_too_large(self, topology: Topology) -> None:
        raw = orjson.dumps(meter("last_gasp", pad="x" * 65536))
        dead = dead_of(METER_EVENTS, raw, topology)
        assert (dead.code, dead.path) == ("too_large", "$")

    def test_value_of_exactly_64_kib_is_not_too_large(self, topology: Topology) -> None:
        raw = b"{" + b" " * (65536 - 2) + b"}"
        assert dead_of(METER_EVENTS, raw, topology).code == "schema"

    @pytest.mark.parametrize("raw", [b"{not json", b"", b'{"a": NaN}', b"\xff\xfe{}"])
    def test_unparseable_value_is_invalid_json(self, topology: Topology, raw: bytes) -> None:
        assert dead_of(METER_EVENTS, raw, topology).code == "invalid_json"

    @pytest.mark.parametrize(
        ("topic", "value", "path"),
        [
            (
                METER_EVENTS,
                meter("voltage", interval_s=900, v_avg=1.0, v_min="x", v_max=2.0),
                "$.v_min",
            ),
            (METER_EVENTS, meter("explode"), "$.type"),
            (METER_EVENTS, {"event_id": "m-1"}, "$.type"),
            (METER_EVENTS, meter("last_gasp", occurred_at="2026-07-14T08:02:11"), "$.occurred_at"),
            (DEVICE_EVENTS, {**device("open"), "state": "ajar"}, "$.state"),
            (CUSTOMER_REPORTS, report("survey"), "$.score"),
        ],
    )
    def test_schema_violation_names_the_json_path(
        self, topology: Topology, topic: str, value: dict[str, Any], path: str
    ) -> None:
        dead = dead_of(topic, value, topology)
        assert (dead.code, dead.path) == ("schema", path)

    def test_json_that_is_not_an_object_is_a_schema_error(self, topology: Topology) -> None:
        assert dead_of(DEVICE_EVENTS, b"[1, 2]", topology).code == "schema"

    @pytest.mark.parametrize(
        "occurred_at",
        [
            "2026-07-06T23:00:00+00:00",
            "2026-07-14T00:10:01+00:00",
            "0001-01-01T00:00:00+08:00",
            "9999-12-31T23:59:59-12:00",
        ],
    )
    def test_timestamps_outside_the_window_are_rejected(
        self, topology: Topology, occurred_at: str
    ) -> None:
        dead = dead_of(METER_EVENTS, meter("last_gasp", occurred_at=occurred_at), topology)
        assert (dead.code, dead.path) == ("timestamp_out_of_range", "$.occurred_at")

    @pytest.mark.parametrize(
        "occurred_at", ["2026-07-07T00:05:01+00:00", "2026-07-14T00:10:00+00:00"]
    )
    def test_timestamps_at_the_edges_are_accepted(
        self, topology: Topology, occurred_at: str
    ) -> None:
        assert isinstance(
            run(METER_EVENTS, meter("last_gasp", occurred_at=occurred_at), topology), Signal
        )

    @pytest.mark.parametrize(
        ("topic", "value", "code", "path"),
        [
            (
                METER_EVENTS,
                {**meter("last_gasp"), "meter_id": "M999"},
                "unknown_meter",
                "$.meter_id",
            ),
            (DEVICE_EVENTS, device("open", device_id="F09-X"), "unknown_device", "$.device_id"),
            (
                CUSTOMER_REPORTS,
                {**report("no_power"), "customer_id": "C9"},
                "unknown_customer",
                "$.customer_id",
            ),
        ],
    )
    def test_ids_missing_from_the_topology_are_unknown(
        self, topology: Topology, topic: str, value: dict[str, Any], code: str, path: str
    ) -> None:
        dead = dead_of(topic, value, topology)
        assert (dead.code, dead.path) == (code, path)

    def test_checks_run_in_order_schema_before_unknown_id(self, topology: Topology) -> None:
        value = {**meter("voltage"), "meter_id": "M999"}  # unknown meter and missing fields
        assert dead_of(METER_EVENTS, value, topology).code == "schema"

    def test_non_utf8_value_is_kept_as_base64(self, topology: Topology) -> None:
        raw = b"\xff\x00garbage"
        wire = orjson.loads(dead_of(METER_EVENTS, raw, topology).to_json())
        assert wire["encoding"] == "base64"
        assert base64.b64decode(wire["value"]) == raw

    def test_utf8_value_is_kept_as_text_without_encoding(self, topology: Topology) -> None:
        wire = orjson.loads(dead_of(METER_EVENTS, "{断电".encode(), topology).to_json())
        assert wire["value"] == "{断电"
        assert "encoding" not in wire
        assert wire["error"]["code"] == "invalid_json"
        assert wire["failed_at"] == "2026-07-14T00:05:00+00:00"

    def test_unknown_topic_is_dead_lettered_not_raised(self, topology: Topology) -> None:
        assert dead_of("grid.other.v1", meter("last_gasp"), topology).code == "schema"


class TestDuplicates:
    def test_same_event_id_twice_gives_one_signal(self, topology: Topology) -> None:
        window = DedupWindow(100)
        first = run(METER_EVENTS, meter("last_gasp"), topology, window)
        second = run(METER_EVENTS, meter("last_gasp"), topology, window)
        assert isinstance(first, Signal)
        assert second == Duplicate("m-1", "meter")

    def test_same_event_id_from_another_source_is_not_a_duplicate(self, topology: Topology) -> None:
        window = DedupWindow(100)
        run(METER_EVENTS, {**meter("last_gasp"), "event_id": "x"}, topology, window)
        out = run(DEVICE_EVENTS, {**device("open"), "event_id": "x"}, topology, window)
        assert isinstance(out, Signal)

    def test_rejected_event_does_not_enter_the_window(self, topology: Topology) -> None:
        window = DedupWindow(100)
        run(METER_EVENTS, {**meter("last_gasp"), "meter_id": "M999"}, topology, window)
        assert isinstance(run(METER_EVENTS, meter("last_gasp"), topology, window), Signal)
