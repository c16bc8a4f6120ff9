"""The fast path agrees with the pydantic schemas: whenever it accepts an event, the schema
accepts it too and yields the same signal kind, data and instant."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.parsing import parse_customer_report, parse_device_event, parse_meter_event
from services.ingest.domain.fast_parse import Parsed, fast_customer, fast_device, fast_meter
from services.ingest.domain.normalise import customer_report, device_event, meter_event

ids = st.text(min_size=0, max_size=3) | st.text(min_size=199, max_size=201) | st.integers()
numbers = (
    st.integers(-3, 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.text(max_size=2)
)
timestamps = (
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat(timespec="milliseconds"))
    | st.sampled_from(
        [
            "2026-07-14T08:02:11Z",
            "2026-07-14t08:02:11z",
            "2026-07-14 08:02:11+08:00",
            "2026-07-14T08:02:11",
            "2026-07-14T08:02:11+0800",
            "2026-07-14T08:02:11.1234567Z",
            "2026-02-30T08:02:11Z",
            "2026-07-14T24:00:00Z",
            "2026-07-14T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "2026-07-14T08:02:11+24:00",
            "2026-07-14T08:02:11+23:59",
            "2026-07-14T08:02:11-00:00",
        ]
    )
    | st.integers()
)
extras = st.dictionaries(
    st.sampled_from(["extra", "text", "score", "incident_id", "lockout", "energized"]),
    numbers | ids,
    max_size=2,
)


valid_ids = st.text(min_size=1, max_size=5) | st.text(min_size=200, max_size=200)
valid_numbers = st.integers(0, 2**60) | st.floats(
    min_value=0, allow_nan=False, allow_infinity=False
)
valid_ints = st.integers(0, 2**60)
valid_times = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.just(
    "2026-07-14T08:02:11Z"
)
noise = numbers | ids | timestamps | st.booleans()


@st.composite
def perturbed(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid event, then (sometimes) one field replaced, dropped or added."""
    value = dict(draw(base))
    action = draw(st.sampled_from(["none", "none", "replace", "drop", "add"]))
    if action == "replace":
        value[draw(st.sampled_from(sorted(value)))] = draw(noise)
    elif action == "drop":
        value.pop(draw(st.sampled_from(sorted(value))))
    elif action == "add":
        value.update(draw(extras))
    return value


def _meter(kind: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "event_id": valid_ids,
            "meter_id": valid_ids,
            "type": st.just(kind),
            "occurred_at": valid_times,
            **fields,
        }
    )


meters = perturbed(
    _meter("last_gasp")
    | _meter("power_restore")
    | _meter(
        "voltage",
        interval_s=st.integers(1, 10**6),
        v_avg=valid_numbers,
        v_min=valid_numbers,
        v_max=valid_numbers,
    )
    | _meter("sag", magnitude_v=valid_numbers, duration_ms=valid_ints)
    | _meter("swell", magnitude_v=valid_numbers, duration_ms=valid_ints)
    | _meter("ping_response", energized=st.booleans())
)
devices = perturbed(
    st.fixed_dictionaries(
        {
            "event_id": valid_ids,
            "device_id": valid_ids,
            "occurred_at": valid_times,
            "state": st.sampled_from(["open", "closed"]),
            "lockout": st.booleans(),
        }
    )
)
reports = perturbed(
    st.fixed_dictionaries(
        {
            "event_id": valid_ids,
            "customer_id": valid_ids,
            "occurred_at": valid_times,
            "channel": st.sampled_from(["phone", "app", "wechat", "sms", "web"]),
            "kind": st.sampled_from(
                ["no_power", "partial_power", "low_voltage", "flicker", "still_out", "survey"]
            ),
        },
        optional={
            "text": st.text(max_size=3) | st.none(),
            "score": st.integers(1, 5),
            "incident_id": valid_ids | st.none(),
        },
    )
)


def agree(fast: Parsed | None, slow: Any, to_parsed: Any, raw: bytes) -> None:
    if fast is None:
        return  # the schema decides; nothing to compare
    try:
        model = slow(raw)
    except ValidationError as exc:  # pragma: no cover - the failure this test exists for
        raise AssertionError(f"fast path accepted what the schema rejects: {exc}") from exc
    expected: Parsed = to_parsed(model)
    assert (fast.event_id, fast.subject_id, fast.kind) == (
        expected.event_id,
        expected.subject_id,
        expected.kind,
    )
    assert fast.occurred_at == expected.occurred_at
    assert fast.occurred_at.utcoffset() == expected.occurred_at.utcoffset()
    assert fast.data == expected.data
    assert [type(v) for v in fast.data.values()] == [type(v) for v in expected.data.values()]


def encode(value: dict[str, Any]) -> bytes:
    try:
        return json.dumps(value).encode()
    except (ValueError, OverflowError):
        assume(False)
        raise


HEAVY = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])


class TestFastPathAgreesWithSchemas:
    @HEAVY
    @given(value=meters)
    def test_meter_events(self, value: dict[str, Any]) -> None:
        agree(fast_meter(value), parse_meter_event, meter_event, encode(value))

    @HEAVY
    @given(value=devices)
    def test_device_events(self, value: dict[str, Any]) -> None:
        agree(fast_device(value), parse_device_event, device_event, encode(value))

    @HEAVY
    @given(value=reports)
    def test_customer_reports(self, value: dict[str, Any]) -> None:
        agree(fast_customer(value), parse_customer_report, customer_report, encode(value))

    def test_well_formed_events_take_the_fast_path(self) -> None:
        at = "2026-07-14T08:02:11.5+08:00"
        assert (
            fast_meter(
                {
                    "event_id": "m",
                    "meter_id": "M",
                    "type": "voltage",
                    "occurred_at": at,
                    "interval_s": 900,
                    "v_avg": 1,
                    "v_min": 0.5,
                    "v_max": 2,
                }
            )
            is not None
        )
        assert (
            fast_device(
                {
                    "event_id": "d",
                    "device_id": "D",
                    "occurred_at": at,
                    "state": "open",
                    "lockout": False,
                }
            )
            is not None
        )
        assert (
            fast_customer(
                {
                    "event_id": "c",
                    "customer_id": "C",
                    "occurred_at": at,
                    "channel": "sms",
                    "kind": "survey",
                    "score": 5,
                }
            )
            is not None
        )
