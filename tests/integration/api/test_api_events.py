"""The SSE feed on a real uvicorn server: id order, feeder filter, Last-Event-ID resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.topics import LIFECYCLE
from services.common.clock import WallClock
from services.common.outbox import add_to_outbox
from services.incidents.api.app import create_app
from services.incidents.api.settings import ApiSettings

AT = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)


async def _add_events(
    sessions: async_sessionmaker[AsyncSession], incident_id: str, feeder: str, seqs: range
) -> None:
    async with sessions() as session:
        for seq in seqs:
            payload = {
                "event_id": f"{incident_id}:{seq}",
                "incident_id": incident_id,
                "seq": seq,
                "type": "opened" if seq == 1 else "etr_set",
                "incident": {"id": incident_id, "feeder_id": feeder, "area": "urban"},
            }
            await add_to_outbox(
                session,
                LIFECYCLE,
                incident_id,
                orjson.dumps(payload),
                incident_id,
                seq,
                schema="incidents",
                created_at=AT,
            )
        await session.commit()


@pytest.fixture
async def base_url(
    settings: ApiSettings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[str]:
    app = create_app(settings, sessions, None, WallClock(), sse_poll_s=0.05)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no start event
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _read(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], n: int
) -> list[tuple[int, str, dict[str, object]]]:
    out: list[tuple[int, str, dict[str, object]]] = []
    async with asyncio.timeout(10), client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line == "":
                if "data" in fields:
                    out.append((int(fields["id"]), fields["event"], orjson.loads(fields["data"])))
                    if len(out) == n:
                        return out
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return out


class TestEvents:
    async def test_stream_filter_and_resume(
        self, base_url: str, sessions: async_sessionmaker[AsyncSession], auth
    ) -> None:
        headers = auth("viewer")
        await _add_events(sessions, "INC-A", "F01", range(1, 4))
        await _add_events(sessions, "INC-B", "F02", range(1, 3))
        async with httpx.AsyncClient(base_url=base_url) as client:
            everything = await _read(client, "/api/v1/events?after=0", headers, 5)
            assert [e[0] for e in everything] == [1, 2, 3, 4, 5]
            assert [e[2]["event_id"] for e in everything][:2] == ["INC-A:1", "INC-A:2"]
            assert everything[0][1] == "opened"
            f02 = await _read(client, "/api/v1/events?after=0&feeder=F02", headers, 2)
            assert [e[2]["event_id"] for e in f02] == ["INC-B:1", "INC-B:2"]
            resumed = await _read(
                client, "/api/v1/events?after=0", {**headers, "Last-Event-ID": "3"}, 2
            )
            assert [e[0] for e in resumed] == [4, 5]

            async def later() -> None:
                await asyncio.sleep(0.3)
                await _add_events(sessions, "INC-C", "F01", range(1, 2))

            adder = asyncio.create_task(later())
            live = await _read(client, "/api/v1/events", headers, 1)  # starts at the newest
            await adder
            assert [e[2]["event_id"] for e in live] == ["INC-C:1"]

    async def test_needs_a_token(self, base_url: str) -> None:
        async with httpx.AsyncClient(base_url=base_url) as client:
            r = await client.get("/api/v1/events")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
