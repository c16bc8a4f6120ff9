"""Rejected input with its reason, published on ``grid.dead-letter.v1`` by every service."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints

from schemas._base import Timestamp, WireModel

# Codes every service uses; services may add their own, so the field stays an open string.
ERROR_CODES: tuple[str, ...] = (
    "invalid_json",
    "schema",
    "unknown_meter",
    "unknown_device",
    "unknown_customer",
    "timestamp_out_of_range",
    "too_large",
)


class DeadLetterError(WireModel):
    code: Annotated[str, StringConstraints(min_length=1)]
    message: str
    path: str | None = None  # JSON path such as "$.v_avg" for code "schema"


class DeadLetter(WireModel):
    service: Annotated[str, StringConstraints(min_length=1)]
    topic: Annotated[str, StringConstraints(min_length=1)]
    partition: int
    offset: int
    key: str | None  # the original key as text; null when the message had none
    value: str  # the raw bytes as UTF-8 text, or base64 when ``encoding`` says so
    encoding: Literal["base64"] | None = None
    error: DeadLetterError
    failed_at: Timestamp
