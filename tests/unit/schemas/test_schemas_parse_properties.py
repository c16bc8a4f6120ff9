"""Property: arbitrary JSON never makes a parse helper raise anything but ValidationError."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import (
    METER_EVENT_TYPES,
    SchemaError,
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

PARSERS: list[Callable[[bytes], Any]] = [
    parse_meter_event,
    parse_device_event,
    parse_customer_report,
    parse_signal,
    parse_dead_letter,
    parse_lifecycle_event,
    parse_delivery,
    parse_topology_changed,
    parse_ami_command,
]
FIELDS = [
    "event_id",
    "meter_id",
    "type",
    "occurred_at",
    "v_avg",
    "score",
    "kind",
    "incident",
    "sla",
    "state",
    "lockout",
    "data",
    "version",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([*METER_EVENT_TYPES, "2026-07-14T08:02:11+08:00", "survey"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=8,
)
objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=8)


def _encode(value: Any) -> bytes:
    # stdlib json, not orjson: it also writes integers beyond 64 bits and NaN, both of
    # which a hostile producer can send
    return json.dumps(value).encode()


def _error_of(parse: Callable[[bytes], Any], raw: bytes) -> SchemaError | None:
    """Parse ``raw``; anything but a ValidationError propagates and fails the test."""
    try:
        parse(raw)
    except ValidationError as exc:
        return schema_error(exc)
    return None


class TestParseHelpersProperties:
    @pytest.mark.parametrize("parse", PARSERS, ids=[p.__name__ for p in PARSERS])
    @settings(max_examples=50, deadline=None)
    @given(value=objects)
    def test_arbitrary_objects_only_raise_validation_error(
        self, parse: Callable[[bytes], Any], value: dict[str, Any]
    ) -> None:
        error = _error_of(parse, _encode(value))
        if error is not None:
            assert error.code in {"schema", "invalid_json"}
            assert error.path.startswith("$")

    @settings(max_examples=50, deadline=None)
    @given(raw=st.binary(max_size=200))
    def test_arbitrary_bytes_only_raise_validation_error(self, raw: bytes) -> None:
        error = _error_of(parse_meter_event, raw)
        if error is not None:
            assert error.path.startswith("$")
