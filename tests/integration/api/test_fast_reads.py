"""The PostgreSQL fast path of the incident list and detail (``api.pg_reads``) answers what
the generic SQLAlchemy queries (used on SQLite and by the actions) answer."""

from __future__ import annotations

from typing import Any

import orjson
from conftest import open_outage  # type: ignore[import-not-found]

from services.common.db import UnitOfWork
from services.incidents import incident_queries
from services.incidents.api import pg_reads
from services.incidents.api.pg_reads import ReadPool
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
