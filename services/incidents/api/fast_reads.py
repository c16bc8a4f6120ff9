"""The incident list and detail GETs answered before FastAPI's request machinery.

Operators' screens poll these two all day. Through the routes, FastAPI's per-request work
(request object, dependency resolution for the context and the bearer token, parameter
validation, exit stacks, exception wrapping) cost about as much CPU as the query itself.
This pure ASGI middleware answers the common, plain request itself: a bearer token that
verifies and grants viewer, and for the list only the filters an operator's screen sends
(status, kind, feeder, area, sort, limit, cursor) with values the route would accept as they
are. Anything else (no or bad token, another role, unknown or odd parameters, an unknown
incident, an invalid cursor) goes on to the route, which answers it as before, errors
included. What it answers is what the route answers: the same reads (``pg_reads``), the same
body and headers. The routes stay registered, so the OpenAPI document does not change, and
``scope["route"]`` is set to them so the request metrics label these requests as before.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.incidents.api import pg_reads
from services.incidents.api.auth import TokenVerifier
from services.incidents.api.etag import etag_for
from services.incidents.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from services.incidents.api.problems import ApiProblem, unavailable_response
from services.incidents.incident_queries import IncidentFilters

LIST_PATH = "/api/v1/incidents"
DETAIL_PREFIX = LIST_PATH + "/"
# the values the list route's Literal parameters accept (a test compares with the OpenAPI)
KINDS = frozenset({"outage", "voltage", "planned"})
AREAS = frozenset({"urban", "rural", "remote"})
SORTS = frozenset({"-detected_at"})
MAX_ID_LENGTH = 100  # the detail route's path parameter
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")  # no sign, no leading zero, no spaces


def split_csv(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated values as one list (the list route's filters)."""
    return [v for value in values or () for v in value.split(",") if v]


class FastReads:
    """Answers plain incident list and detail GETs; passes everything else to ``app``."""

    def __init__(self, app: ASGIApp, list_route: Any, detail_route: Any) -> None:
        self._app = app
        self._list_route, self._detail_route = list_route, detail_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(LIST_PATH)
            and not scope.get("root_path")
        ):
            response = await self._answer(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response | None:
        app = scope.get("app")  # set by FastAPI before its middleware runs
        if app is None:
            return None
        ctx = app.state.ctx
        if not ctx.reads.enabled or not _grants_viewer(scope, app.state.verifier):
            return None
        path: str = scope["path"]
        try:
            if path == LIST_PATH:
                query = _list_query(scope["query_string"])
                if query is None:
                    return None
                try:
                    async with ctx.reads.connection() as conn:
                        body = await pg_reads.list_page_json(conn, *query)
                except (ValueError, TypeError):
                    return None  # an invalid cursor: the route answers its 400
                scope["route"] = self._list_route
                return Response(body, media_type="application/json")
            incident_id = path[len(DETAIL_PREFIX) :]
            if (
                not path.startswith(DETAIL_PREFIX)
                or not incident_id
                or "/" in incident_id
                or len(incident_id) > MAX_ID_LENGTH
            ):
                return None
            async with ctx.reads.connection() as conn:
                found = await pg_reads.detail_json(conn, incident_id)
        except pg_reads.UNAVAILABLE as exc:
            return unavailable_response(Request(scope), exc)
        if found is None:
            return None  # the route answers the 404
        body, version = found
        scope["route"] = self._detail_route
        return Response(body, media_type="application/json",
                        headers={"ETag": etag_for(incident_id, version)})  # fmt: skip


def _grants_viewer(scope: Scope, verifier: TokenVerifier) -> bool:
    """Whether the request's bearer token is valid and grants viewer, read as FastAPI's
    ``HTTPBearer`` reads it (the first Authorization header, scheme case-insensitive)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return False
            try:
                return "viewer" in verifier.verify(token).granted
            except ApiProblem:
                return False
    return False


def _list_query(raw: bytes) -> tuple[IncidentFilters, str | None, int] | None:
    """The list's filters, cursor and limit when every parameter is one this path takes
    with a value the route accepts as it is; None otherwise (the route decides)."""
    lists: dict[str, list[str]] = {"status": [], "kind": [], "feeder": [], "area": []}
    single: dict[str, str] = {}
    # as Starlette parses a query string
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if not value:
            return None
        if key in lists:
            if (key == "kind" and value not in KINDS) or (key == "area" and value not in AREAS):
                return None
            lists[key].append(value)
        elif key in ("limit", "cursor", "sort") and key not in single:
            single[key] = value
        else:
            return None
    limit = single.get("limit")
    if limit is not None and (not _LIMIT.fullmatch(limit) or int(limit) > MAX_LIMIT):
        return None
    if single.get("sort", "-detected_at") not in SORTS:
        return None
    filters = IncidentFilters(
        status=split_csv(lists["status"]), kind=lists["kind"],
        feeder=split_csv(lists["feeder"]), area=lists["area"],
    )  # fmt: skip
    return filters, single.get("cursor"), int(limit) if limit is not None else DEFAULT_LIMIT
