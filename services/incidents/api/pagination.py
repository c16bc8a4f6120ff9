"""Opaque cursors for keyset pagination: base64url of a small JSON object."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from services.incidents.api.problems import ApiProblem

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next (null: last)."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; null on the last page")


def encode_cursor(position: dict[str, Any]) -> str:
    """An opaque cursor for ``position``."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position a cursor stands for; 400 ``invalid_cursor`` when it is not one of ours."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid") from exc
    if not isinstance(value, dict):
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid")
    return value


def id_after(cursor: str | None) -> int:
    """For id-ordered lists: the last id of the previous page (0 for the first page)."""
    position = decode_cursor(cursor)
    if position is None:
        return 0
    after = position.get("after")
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid")
    return after
