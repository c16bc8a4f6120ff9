"""The PostgreSQL fast path of the incident list and detail (``api.pg_reads``) answers what
the generic SQLAlchemy queries (used on SQLite and by the actions) answer."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from conftest import open_outage  # type: ignore[import-not-found]
from starlette.types import Receive, Scope, Send

from services.common.clock import WallClock
from services.common.db import UnitOfWork
from services.incidents import incident_queries
from services.incidents.api import pg_reads
from services.incidents.api.app import create_app
from services.incidents.api.fast_reads import AREAS, KINDS, SORTS, FastReads
from services.incidents.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from services.incidents.api.pg_reads import ReadPool
from services.incidents.api.routers import incidents
from services.incidents.incident_queries import IncidentFilters


class TestFastReads:
    async def test_list_and_detail_match_the_generic_queries(self, sessions, handlers) -> None:
        devices = ["F001-R1-FU1", "F001-R1-FU2", "F001-R2-FU1"]
        ids = [await open_outage(sessions, handlers, d, n=k) for k, d in enumerate(devices)]
        reads = ReadPool(sessions.kw["bind"].url)
        assert reads.enabled
        cases = [
            IncidentFilters(), IncidentFilters(status=["detected", "confirmed"]),
            IncidentFilters(feeder=["F001"], area=["urban", "rural", "remote"]),
            IncidentFilters(q=ids[1][-4:]), IncidentFilters(sla="on_track"),
            IncidentFilters(kind=["voltage"]),
        ]  # fmt: skip
        try:
            async with reads.connection() as conn, UnitOfWork(sessions) as uow:
                for filters in cases:
                    cursor: str | None = None
                    while True:  # page by one: every cursor is exercised too
                        fast: dict[str, Any] = orjson.loads(
                            await pg_reads.list_page_json(conn, filters, cursor, 1)
                        )
                        page = await incident_queries.list_incidents(
                            uow.session, filters, cursor, 1
                        )
                        assert fast == orjson.loads(
                            orjson.dumps({"items": page.items, "next_cursor": page.next_cursor})
                        ), filters
                        cursor = page.next_cursor
                        if cursor is None:
                            break
                for iid in ids:
                    found = await pg_reads.detail_json(conn, iid)
                    detail = await incident_queries.get_incident(uow.session, iid)
                    assert found is not None
                    assert detail is not None
                    assert orjson.loads(found[0]) == detail.to_dict()
                    assert found[1] == detail.version
                assert await pg_reads.detail_json(conn, "NOPE") is None
        finally:
            await reads.close()


class TestFastReadsMiddleware:
    """``api.fast_reads.FastReads`` answers plain list/detail GETs exactly as the routes do
    and passes everything else on to them."""

    async def test_answers_as_the_routes_and_passes_the_rest_on(
        self, settings, sessions, bus, handlers, auth
    ) -> None:
        ids = [await open_outage(sessions, handlers, d, n=k)
               for k, d in enumerate(["F001-R1-FU1", "F001-R1-FU2", "F001-R2-FU1"])]  # fmt: skip
        routes_only = create_app(settings, sessions, bus, WallClock(), handlers=handlers,
                                 fast_reads=False)  # fmt: skip
        passed_on: list[str] = []

        async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
            passed_on.append(scope["path"])
            await routes_only(scope, receive, send)

        fast = FastReads(recorder, incidents.list_route, incidents.detail_route)

        async def entry(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope["app"] = routes_only  # as FastAPI sets it before its middleware
                await fast(scope, receive, send)
            else:
                await routes_only(scope, receive, send)

        viewer, manager = auth("viewer"), auth("manager")
        first = (await _get(routes_only, "/api/v1/incidents?limit=1", viewer)).json()
        cursor = first["next_cursor"]
        assert cursor
        answered = [  # (path, headers): what the middleware answers itself
            ("/api/v1/incidents", viewer), ("/api/v1/incidents", manager),
            ("/api/v1/incidents", auth("operator")),
            ("/api/v1/incidents?status=detected,confirmed&status=dispatched", viewer),
            ("/api/v1/incidents?feeder=F001&area=urban&area=rural&kind=outage", viewer),
            ("/api/v1/incidents?limit=1&sort=-detected_at", viewer),
            (f"/api/v1/incidents?limit=1&cursor={cursor}", viewer),
            ("/api/v1/incidents?limit=200", viewer),
            (f"/api/v1/incidents/{ids[0]}", viewer), (f"/api/v1/incidents/{ids[2]}", viewer),
            (f"/api/v1/incidents/{ids[1]}", {"authorization": "bearer " + viewer[
                "Authorization"].split(" ", 1)[1]}),
        ]  # fmt: skip
        routed = [  # what goes on to the routes (their answers, errors included)
            ("/api/v1/incidents", {}), ("/api/v1/incidents", {"Authorization": "Bearer x.y.z"}),
            ("/api/v1/incidents", {"Authorization": "Basic dXNlcjpwYXNz"}),
            ("/api/v1/incidents", auth("viewer", ttl_s=-120)),
            (f"/api/v1/incidents/{ids[0]}", {"Authorization": "Bearer"}),
            ("/api/v1/incidents?limit=0", viewer), ("/api/v1/incidents?limit=201", viewer),
            ("/api/v1/incidents?limit=010", viewer), ("/api/v1/incidents?limit=+5", viewer),
            ("/api/v1/incidents?limit=1&limit=2", viewer), ("/api/v1/incidents?limit=", viewer),
            ("/api/v1/incidents?area=north", viewer),
            ("/api/v1/incidents?area=urban,rural", viewer),
            ("/api/v1/incidents?kind=OUTAGE", viewer), ("/api/v1/incidents?sort=id", viewer),
            ("/api/v1/incidents?cursor=not-a-cursor", viewer), ("/api/v1/incidents?q=F001", viewer),
            ("/api/v1/incidents?sla=on_track", viewer), ("/api/v1/incidents?status=", viewer),
            ("/api/v1/incidents?unknown=1", viewer),
            ("/api/v1/incidents/NOPE", viewer), ("/api/v1/incidents/" + "X" * 101, viewer),
            (f"/api/v1/incidents/{ids[0]}/customers", viewer),
            ("/api/v1/incidentsX" + ids[0], viewer),  # no route: not the detail of ids[0]
        ]  # fmt: skip
        for path, headers in answered + routed:
            passed_on.clear()
            ours = await _get(entry, path, headers)
            theirs = await _get(routes_only, path, headers)
            assert (path, passed_on == []) == (path, (path, headers) in answered)
            assert ours.status_code == theirs.status_code, path
            assert ours.content == theirs.content, path
            assert _headers(ours) == _headers(theirs), path
            if (path, headers) in answered:
                assert ours.status_code == 200, path

    async def test_same_openapi_and_metrics_labels(
        self, settings, sessions, bus, handlers, auth
    ) -> None:
        iid = await open_outage(sessions, handlers, "F001-R1-FU1")
        fast = create_app(settings, sessions, bus, WallClock(), handlers=handlers)
        plain = create_app(settings, sessions, bus, WallClock(), handlers=handlers,
                           fast_reads=False)  # fmt: skip
        assert fast.openapi() == plain.openapi()
        params = {p["name"]: p["schema"] for p in
                  fast.openapi()["paths"]["/api/v1/incidents"]["get"]["parameters"]}  # fmt: skip
        assert set(params["kind"]["anyOf"][0]["items"]["enum"]) == KINDS
        assert set(params["area"]["anyOf"][0]["items"]["enum"]) == AREAS
        assert {params["sort"]["const"]} == SORTS
        assert params["limit"]["maximum"] == MAX_LIMIT
        assert params["limit"]["default"] == DEFAULT_LIMIT
        for path in ("/api/v1/incidents", f"/api/v1/incidents/{iid}"):
            assert (await _get(fast, path, auth("viewer"))).status_code == 200
        metrics = (await _get(fast, "/metrics", {})).text
        for route in ("/api/v1/incidents", "/api/v1/incidents/{incident_id}"):
            assert f'route="{route}",status="200"' in metrics, route


async def _get(app: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        return await http.get(path, headers=headers)


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k != "date"]
