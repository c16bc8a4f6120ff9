"""The committed JSON Schemas and AsyncAPI document match the models."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import yaml
from test_schemas_wire_formats import (
    DEAD_LETTER_EXAMPLE,
    DEVICE_EXAMPLE,
    LIFECYCLE_EXAMPLE,
    METER_EXAMPLES,
    SIGNAL_EXAMPLE,
)

from schemas.export import SCHEMAS_DIR, render_all, stale_files, write_all
from schemas.topics import TOPICS


class TestGeneratedFiles:
    def test_committed_files_are_up_to_date(self) -> None:
        stale = stale_files(SCHEMAS_DIR)
        assert stale == [], f"stale generated files {stale}: run `outagedesk schemas export`"

    def test_stale_file_is_detected(self, tmp_path: Path) -> None:
        write_all(tmp_path)
        assert stale_files(tmp_path) == []
        target = tmp_path / "json" / "grid.signals.v1.json"
        target.write_text(target.read_text() + " ")
        assert stale_files(tmp_path) == ["json/grid.signals.v1.json"]
        assert write_all(tmp_path) == ["json/grid.signals.v1.json"]

    def test_one_schema_per_topic_and_asyncapi(self) -> None:
        files = render_all()
        assert set(files) == {f"json/{t}.json" for t in TOPICS} | {"asyncapi.yaml"}

    def test_json_schemas_accept_design_examples(self) -> None:
        files = render_all()
        cases = [("grid.meter-events.v1", m) for m in METER_EXAMPLES] + [
            ("grid.device-events.v1", DEVICE_EXAMPLE),
            ("grid.signals.v1", SIGNAL_EXAMPLE),
            ("grid.dead-letter.v1", DEAD_LETTER_EXAMPLE),
            ("incidents.lifecycle.v1", LIFECYCLE_EXAMPLE),
        ]
        for topic, value in cases:
            schema = json.loads(files[f"json/{topic}.json"])
            jsonschema.validate(orjson.loads(orjson.dumps(value)), schema)

    def test_json_schema_rejects_extra_field(self) -> None:
        schema = json.loads(render_all()["json/grid.device-events.v1.json"])
        validator = jsonschema.Draft202012Validator(schema)
        assert not validator.is_valid({**DEVICE_EXAMPLE, "extra": 1})


class TestAsyncApi:
    def test_every_topic_is_a_channel_with_message_and_producer(self) -> None:
        doc = yaml.safe_load(render_all()["asyncapi.yaml"])
        assert doc["asyncapi"] == "3.0.0"
        addresses = {c["address"]: cid for cid, c in doc["channels"].items()}
        assert set(addresses) == set(TOPICS)
        for topic, spec in TOPICS.items():
            cid = addresses[topic]
            message = doc["components"]["messages"][spec.title]
            assert message["payload"] == {"$ref": f"./json/{topic}.json"}
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            sends = [
                op
                for op in doc["operations"].values()
                if op["channel"] == {"$ref": f"#/channels/{cid}"}
            ]
            assert len(sends) == len(spec.producers) >= 1
            assert all(op["action"] == "send" for op in sends)
