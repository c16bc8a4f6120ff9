"""Every example of DESIGN section 3 validates; bad inputs are rejected with their JSON path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas import (
    TOPICS,
    CustomerReport,
    VoltageReading,
    parse_ami_command,
    parse_customer_report,
    parse_dead_letter,
    parse_delivery,
    parse_device_event,
    parse_lifecycle_event,
    parse_meter_event,
    parse_signal,
    parse_topology_changed,
    schema_error,
)

TS = "2026-07-14T08:02:11+08:00"

METER_EXAMPLES: list[dict[str, Any]] = [
    {"event_id": "m-1", "meter_id": "M000001", "type": "last_gasp", "occurred_at": TS},
    {"event_id": "m-2", "meter_id": "M000001", "type": "power_restore", "occurred_at": TS},
    {
        "event_id": "m-3",
        "meter_id": "M000001",
        "type": "voltage",
        "occurred_at": TS,
        "interval_s": 900,
        "v_avg": 205.1,
        "v_min": 199.0,
        "v_max": 210.2,
    },
    {
        "event_id": "m-4",
        "meter_id": "M000001",
        "type": "sag",
        "occurred_at": TS,
        "magnitude_v": 150.0,
        "duration_ms": 120,
    },
    {
        "event_id": "m-5",
        "meter_id": "M000001",
        "type": "swell",
        "occurred_at": TS,
        "magnitude_v": 250.0,
        "duration_ms": 80,
    },
    {
        "event_id": "m-6",
        "meter_id": "M000001",
        "type": "ping_response",
        "occurred_at": TS,
        "energized": True,
    },
]
DEVICE_EXAMPLE = {
    "event_id": "d-1",
    "device_id": "F01-R1",
    "occurred_at": TS,
    "state": "open",
    "lockout": True,
}
REPORT_EXAMPLE = {
    "event_id": "r-1",
    "customer_id": "C000001",
    "occurred_at": TS,
    "channel": "phone",
    "kind": "no_power",
    "text": "lights out",
}
SURVEY_EXAMPLE = {
    "event_id": "r-2",
    "customer_id": "C000001",
    "occurred_at": TS,
    "channel": "sms",
    "kind": "survey",
    "score": 4,
    "incident_id": "I-1",
}
SIGNAL_EXAMPLE = {
    "signal_id": "m-3",
    "source": "meter",
    "kind": "voltage",
    "feeder_id": "F01",
    "device_id": "F01-FU7",
    "transformer_id": "T0001",
    "meter_id": "M000001",
    "customer_id": "C000001",
    "occurred_at": TS,
    "received_at": "2026-07-14T00:02:12Z",
    "data": {"interval_s": 900, "v_avg": 205.1, "v_min": 199.0, "v_max": 210.2},
}
DEAD_LETTER_EXAMPLE = {
    "service": "ingest",
    "topic": "grid.meter-events.v1",
    "partition": 3,
    "offset": 1234,
    "key": "M000001",
    "value": '{"event_id": 1}',
    "error": {"code": "schema", "message": "Field required", "path": "$.meter_id"},
    "failed_at": TS,
}
DEAD_LETTER_B64 = {
    **DEAD_LETTER_EXAMPLE,
    "key": None,
    "value": "/w==",
    "encoding": "base64",
    "error": {"code": "invalid_json", "message": "bad", "path": None},
}
SNAPSHOT = {
    "id": "I-1",
    "kind": "outage",
    "status": "confirmed",
    "feeder_id": "F01",
    "device_id": "F01-FU7",
    "transformer_id": None,
    "customer_id": None,
    "area": "urban",
    "detected_at": TS,
    "confirmed_at": TS,
    "etr": None,
    "restored_at": None,
    "customers_affected": 120,
    "customers_out": 118,
    "cause": None,
    "parent_incident_id": None,
    "sla": {"acknowledge": "met", "crew_on_site": "on_track"},
}
LIFECYCLE_EXAMPLE = {
    "event_id": "I-1:2",
    "incident_id": "I-1",
    "seq": 2,
    "type": "confirmed",
    "occurred_at": TS,
    "actor": "system",
    "incident": SNAPSHOT,
    "customers_added": [{"customer_id": "C000001", "interrupted_at": "2026-07-14T08:02:11+08:00"}],
    "customers_restored": [],
}
LIFECYCLE_EXTRAS = {
    **LIFECYCLE_EXAMPLE,
    "incident": {
        **SNAPSHOT,
        "crew_id": "crew-7",
        "closed_at": TS,
        "impact_total": 12.5,
        "merged_into": None,
    },
}
DELIVERY_EXAMPLE = {
    "customer_id": "C000001",
    "incident_id": "I-1",
    "job_id": "J-9",
    "stage": "outage_detected",
    "channel": "sms",
    "status": "failed",
    "attempts": 8,
    "occurred_at": TS,
    "error": "gateway 503",
}
TOPOLOGY_EXAMPLE = {"version": 3, "changed_at": TS}
AMI_EXAMPLE = {
    "command_id": "cmd-1",
    "meter_id": "M000001",
    "command": "ping",
    "requested_at": TS,
    "incident_id": "I-1",
}

Parser = Callable[[bytes], Any]
VALID: list[tuple[str, Parser, dict[str, Any]]] = [
    *[(f"meter-{m['type']}", parse_meter_event, m) for m in METER_EXAMPLES],
    ("device", parse_device_event, DEVICE_EXAMPLE),
    ("report", parse_customer_report, REPORT_EXAMPLE),
    ("survey", parse_customer_report, SURVEY_EXAMPLE),
    ("signal", parse_signal, SIGNAL_EXAMPLE),
    ("dead-letter", parse_dead_letter, DEAD_LETTER_EXAMPLE),
    ("dead-letter-b64", parse_dead_letter, DEAD_LETTER_B64),
    ("lifecycle", parse_lifecycle_event, LIFECYCLE_EXAMPLE),
    ("lifecycle-extras", parse_lifecycle_event, LIFECYCLE_EXTRAS),
    ("delivery", parse_delivery, DELIVERY_EXAMPLE),
    ("topology-changed", parse_topology_changed, TOPOLOGY_EXAMPLE),
    ("ami-command", parse_ami_command, AMI_EXAMPLE),
]


def _without(value: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != field}


VOLTAGE = METER_EXAMPLES[2]
BAD: list[tuple[str, Parser, dict[str, Any], str]] = [
    ("missing field", parse_meter_event, _without(VOLTAGE, "v_avg"), "$.v_avg"),
    ("wrong type", parse_meter_event, {**VOLTAGE, "v_avg": "205"}, "$.v_avg"),
    ("unknown type", parse_meter_event, {**VOLTAGE, "type": "brownout"}, "$.type"),
    ("missing type", parse_meter_event, _without(VOLTAGE, "type"), "$.type"),
    (
        "naive timestamp",
        parse_meter_event,
        {**METER_EXAMPLES[0], "occurred_at": "2026-07-14T08:02:11"},
        "$.occurred_at",
    ),
    (
        "epoch timestamp",
        parse_meter_event,
        {**METER_EXAMPLES[0], "occurred_at": 1783987331},
        "$.occurred_at",
    ),
    ("extra field", parse_meter_event, {**METER_EXAMPLES[0], "v_avg": 1.0}, "$.v_avg"),
    ("empty id", parse_meter_event, {**METER_EXAMPLES[0], "meter_id": ""}, "$.meter_id"),
    ("bool as string", parse_device_event, {**DEVICE_EXAMPLE, "lockout": "true"}, "$.lockout"),
    ("bad state", parse_device_event, {**DEVICE_EXAMPLE, "state": "tripped"}, "$.state"),
    ("score too high", parse_customer_report, {**SURVEY_EXAMPLE, "score": 6}, "$.score"),
    ("score too low", parse_customer_report, {**SURVEY_EXAMPLE, "score": 0}, "$.score"),
    ("score outside survey", parse_customer_report, {**REPORT_EXAMPLE, "score": 3}, "$.score"),
    ("survey without score", parse_customer_report, _without(SURVEY_EXAMPLE, "score"), "$.score"),
    ("unknown signal kind", parse_signal, {**SIGNAL_EXAMPLE, "kind": "boom"}, "$.kind"),
    (
        "nested error",
        parse_lifecycle_event,
        {**LIFECYCLE_EXAMPLE, "incident": {**SNAPSHOT, "sla": {"restore": "late"}}},
        "$.incident.sla.restore",
    ),
    (
        "snapshot field missing",
        parse_lifecycle_event,
        {**LIFECYCLE_EXAMPLE, "incident": _without(SNAPSHOT, "etr")},
        "$.incident.etr",
    ),
    (
        "list item",
        parse_lifecycle_event,
        {**LIFECYCLE_EXAMPLE, "customers_added": [{"customer_id": "C1"}, 2]},
        "$.customers_added[1]",
    ),
    ("delivery status", parse_delivery, {**DELIVERY_EXAMPLE, "status": "queued"}, "$.status"),
    (
        "dead letter encoding",
        parse_dead_letter,
        {**DEAD_LETTER_EXAMPLE, "encoding": "hex"},
        "$.encoding",
    ),
    ("topology version", parse_topology_changed, {**TOPOLOGY_EXAMPLE, "version": 0}, "$.version"),
    ("ami command", parse_ami_command, {**AMI_EXAMPLE, "command": "reboot"}, "$.command"),
    ("odd key", parse_device_event, {**DEVICE_EXAMPLE, "a b": 1}, "$['a b']"),
]


class TestDesignExamples:
    @pytest.mark.parametrize(("name", "parse", "value"), VALID, ids=[v[0] for v in VALID])
    def test_example_validates(self, name: str, parse: Parser, value: dict[str, Any]) -> None:
        parsed = parse(orjson.dumps(value))
        assert parsed.model_dump(mode="json", exclude_unset=True).keys() == value.keys()

    def test_voltage_is_the_voltage_variant(self) -> None:
        parsed = parse_meter_event(orjson.dumps(VOLTAGE))
        assert isinstance(parsed, VoltageReading)
        assert parsed.occurred_at.utcoffset() is not None
        assert parsed.v_avg == pytest.approx(205.1)

    def test_integer_voltage_is_accepted_as_number(self) -> None:
        parsed = parse_meter_event(orjson.dumps({**VOLTAGE, "v_avg": 205}))
        assert isinstance(parsed, VoltageReading)
        assert parsed.v_avg == 205.0

    def test_parsed_value_round_trips(self) -> None:
        report = parse_customer_report(orjson.dumps(SURVEY_EXAMPLE))
        assert isinstance(report, CustomerReport)
        again = parse_customer_report(report.model_dump_json().encode())
        assert again == report


class TestRejectedInputs:
    @pytest.mark.parametrize(("name", "parse", "value", "path"), BAD, ids=[b[0] for b in BAD])
    def test_rejected_with_path(
        self, name: str, parse: Parser, value: dict[str, Any], path: str
    ) -> None:
        with pytest.raises(ValidationError) as info:
            parse(orjson.dumps(value))
        error = schema_error(info.value)
        assert (error.code, error.path) == ("schema", path)
        assert error.message

    def test_invalid_json_has_its_own_code(self) -> None:
        with pytest.raises(ValidationError) as info:
            parse_meter_event(b'{"event_id": ')
        assert schema_error(info.value).code == "invalid_json"
        assert schema_error(info.value).path == "$"

    def test_non_object_is_a_schema_error_at_root(self) -> None:
        with pytest.raises(ValidationError) as info:
            parse_device_event(b"[1, 2]")
        assert schema_error(info.value).as_dict()["path"] == "$"


class TestTopicTable:
    def test_key_field_exists_in_every_topic_schema(self) -> None:
        for spec in TOPICS.values():
            properties = spec.adapter.json_schema()
            if spec.key_field is None:
                assert spec.fixed_key == "topology"
                continue
            names = set(properties.get("properties", {}))
            for variant in properties.get("$defs", {}).values():
                names |= set(variant.get("properties", {}))
            assert spec.key_field in names, spec.name

    def test_key_for_value(self) -> None:
        assert TOPICS["grid.meter-events.v1"].key_for(METER_EXAMPLES[0]) == "M000001"
        assert TOPICS["grid.signals.v1"].key_for(SIGNAL_EXAMPLE) == "F01"
        assert TOPICS["topology.changed.v1"].key_for(TOPOLOGY_EXAMPLE) == "topology"
        assert TOPICS["grid.dead-letter.v1"].key_for(DEAD_LETTER_B64) is None
