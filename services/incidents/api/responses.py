"""JSON responses serialised by orjson straight from the query's dicts.

The hot read routes (incident list and detail) and the incident writes return these instead
of letting FastAPI validate and re-serialise through their ``response_model``: that round
trip through pydantic cost more CPU than the whole query. The routes keep declaring their
``response_model`` so the OpenAPI schema is unchanged, and the schemathesis suite checks that
what they send matches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Response


def json_response(content: Any, headers: Mapping[str, str] | None = None) -> Response:
    """``content`` (JSON-native values only: str, int, float, bool, None, list, dict) as an
    ``application/json`` response."""
    return Response(orjson.dumps(content), media_type="application/json", headers=headers)
