"""Scenario files (DESIGN section 14): JSON Lines, one message a line, in delivery order.

``{"topic": ..., "key": ..., "value": {...}, "at": ...}``; ``key`` defaults to the topic's
key field of ``value``, ``at`` to ``value.occurred_at``. A line with ``"raw": "<text>"``
instead of ``value`` is sent verbatim (bad-input cases). Pure parsing: shared by
``outagedesk replay`` (real Kafka) and ``outagedesk demo`` (in-memory bus, virtual clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from schemas.topics import TOPICS


class ScenarioError(ValueError):
    """A scenario line that cannot be delivered; the message names the line number."""


@dataclass(frozen=True, slots=True)
class ScenarioLine:
    """One message to deliver: ``at`` is its delivery time (timezone-aware)."""

    topic: str
    key: bytes | None
    value: bytes
    at: datetime
    line_no: int = 0


def read_scenario(path: str | Path) -> Iterator[ScenarioLine]:
    """Parse the scenario file at ``path`` lazily, line by line (blank lines skipped)."""
    with Path(path).open("rb") as fh:
        yield from parse_scenario_lines(fh)


def parse_scenario_lines(lines: Iterable[bytes | str]) -> Iterator[ScenarioLine]:
    """Parse scenario lines; a line without a time of its own (a raw line without ``at``)
    is delivered at the previous line's time."""
    previous_at: datetime | None = None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = _parse_line(line, line_no, previous_at)
        previous_at = parsed.at
        yield parsed


def _parse_line(line: bytes | str, line_no: int, previous_at: datetime | None) -> ScenarioLine:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ScenarioError(f"line {line_no}: not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ScenarioError(f"line {line_no}: expected a JSON object")
    topic = obj.get("topic")
    if not isinstance(topic, str) or not topic:
        raise ScenarioError(f"line {line_no}: 'topic' must be a non-empty string")
    has_value, has_raw = "value" in obj, "raw" in obj
    if has_value == has_raw:
        raise ScenarioError(f"line {line_no}: exactly one of 'value' and 'raw' is required")
    value_obj: Any = obj.get("value")
    if has_raw:
        raw = obj["raw"]
        if not isinstance(raw, str):
            raise ScenarioError(f"line {line_no}: 'raw' must be a string")
        value = raw.encode("utf-8", "surrogatepass")
        value_obj = _try_json(value)
    else:
        value = orjson.dumps(value_obj)
    key = _key(obj, topic, value_obj, line_no)
    at = _at(obj, value_obj, line_no, previous_at)
    return ScenarioLine(topic=topic, key=key, value=value, at=at, line_no=line_no)


def _try_json(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _key(obj: dict[str, Any], topic: str, value: Any, line_no: int) -> bytes | None:
    if "key" in obj:
        key = obj["key"]
        if key is None:
            return None
        if not isinstance(key, str):
            raise ScenarioError(f"line {line_no}: 'key' must be a string or null")
        return key.encode("utf-8")
    spec = TOPICS.get(topic)
    if spec is None:
        return None
    if spec.key_field is None:
        return None if spec.fixed_key is None else spec.fixed_key.encode("utf-8")
    default = value.get(spec.key_field) if isinstance(value, dict) else None
    # Only a string field makes a key; a bad-input line keeps no key rather than a guess.
    return default.encode("utf-8") if isinstance(default, str) else None


def _at(obj: dict[str, Any], value: Any, line_no: int, previous: datetime | None) -> datetime:
    text = obj.get("at")
    if text is not None:
        at = _timestamp(text)
        if at is None:
            raise ScenarioError(f"line {line_no}: 'at' must be RFC 3339 with an offset: {text!r}")
        return at
    # A bad-input line may carry a broken occurred_at on purpose; it is then delivered
    # right after the line before it.
    occurred = _timestamp(value.get("occurred_at")) if isinstance(value, dict) else None
    if occurred is not None:
        return occurred
    if previous is None:
        raise ScenarioError(f"line {line_no}: no 'at' and no valid value.occurred_at")
    return previous


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None
