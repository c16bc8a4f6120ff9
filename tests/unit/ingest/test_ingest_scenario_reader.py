from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from services.common.scenario import ScenarioError, parse_scenario_lines

CST = timezone(timedelta(hours=8))


def line(**fields: object) -> bytes:
    return orjson.dumps(fields)


class TestScenarioReader:
    def test_key_and_at_default_from_the_value(self) -> None:
        value = {
            "event_id": "m-1",
            "meter_id": "M000001",
            "type": "last_gasp",
            "occurred_at": "2026-07-14T08:02:11+08:00",
        }
        [parsed] = parse_scenario_lines([line(topic="grid.meter-events.v1", value=value)])
        assert parsed.key == b"M000001"
        assert parsed.at == datetime(2026, 7, 14, 8, 2, 11, tzinfo=CST)
        assert orjson.loads(parsed.value) == value

    def test_explicit_key_and_at_win(self) -> None:
        [parsed] = parse_scenario_lines(
            [
                line(
                    topic="grid.device-events.v1",
                    key="K",
                    at="2026-07-14T09:00:00Z",
                    value={"device_id": "D", "occurred_at": "2026-07-14T08:00:00Z"},
                )
            ]
        )
        assert (parsed.key, parsed.at) == (b"K", datetime(2026, 7, 14, 9, tzinfo=UTC))

    def test_each_topic_uses_its_own_key_field(self) -> None:
        lines = [
            line(
                topic="grid.customer-reports.v1",
                at="2026-07-14T09:00:00Z",
                value={"customer_id": "C1"},
            ),
            line(topic="topology.changed.v1", at="2026-07-14T09:00:00Z", value={"version": 2}),
            line(topic="some.other.topic", at="2026-07-14T09:00:00Z", value={"id": "x"}),
        ]
        assert [p.key for p in parse_scenario_lines(lines)] == [b"C1", b"topology", None]

    def test_raw_line_is_sent_verbatim_at_the_previous_time(self) -> None:
        lines = [
            line(
                topic="grid.meter-events.v1",
                value={"meter_id": "M1", "occurred_at": "2026-07-14T08:00:00Z"},
            ),
            line(topic="grid.meter-events.v1", raw="{not json", key="M1"),
        ]
        first, second = parse_scenario_lines(lines)
        assert second.value == b"{not json"
        assert second.at == first.at
        assert second.key == b"M1"

    def test_raw_json_line_takes_key_and_time_from_its_text(self) -> None:
        raw = '{"meter_id": "M9", "occurred_at": "2026-07-14T08:00:00Z", "type": "x"}'
        [parsed] = parse_scenario_lines([line(topic="grid.meter-events.v1", raw=raw)])
        assert (parsed.key, parsed.value) == (b"M9", raw.encode())

    def test_blank_lines_are_skipped_and_line_numbers_kept(self) -> None:
        lines = [b"\n", line(topic="t", at="2026-07-14T08:00:00Z", value={})]
        [parsed] = parse_scenario_lines(lines)
        assert parsed.line_no == 2

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (b"[1]", "JSON object"),
            (b"{oops", "not JSON"),
            (line(value={}), "topic"),
            (line(topic="t", at="2026-07-14T08:00:00Z"), "exactly one"),
            (line(topic="t", at="2026-07-14T08:00:00Z", value={}, raw="x"), "exactly one"),
            (line(topic="t", value={}), "no 'at'"),
            (line(topic="t", at="2026-07-14T08:00:00", value={}), "offset"),
            (line(topic="t", at="2026-07-14T08:00:00Z", value={}, key=5), "key"),
        ],
    )
    def test_bad_lines_name_their_line_number(self, text: bytes, message: str) -> None:
        with pytest.raises(ScenarioError, match=message) as info:
            list(parse_scenario_lines([text]))
        assert str(info.value).startswith("line 1:")
