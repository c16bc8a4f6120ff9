"""Crews, dead letters (list and replay through the bus) and the audit log they write."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus.memory import MemoryBus
from services.incidents.dead_letter_store import dead_letters


async def _seed_dead_letters(sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    async with sessions() as session:
        await session.execute(
            sa.insert(dead_letters),
            [
                {
                    "service": "ingest",
                    "topic": "grid.meter-events.v1",
                    "partition": 0,
                    "offset": k,
                    "key": f"M{k:06d}",
                    "value": f'{{"event_id": "m-{k}"}}',
                    "encoding": None,
                    "error_code": "unknown_meter" if k % 2 else "schema",
                    "error_message": "no such meter",
                    "error_path": None,
                    "failed_at": datetime(2026, 7, 14, 8, k % 60, tzinfo=UTC),
                    "replayed_at": None,
                }
                for k in range(n)
            ],
        )
        await session.commit()


class TestCrews:
    async def test_create_list_update_and_audit(self, client: httpx.AsyncClient, auth) -> None:
        sup, op, admin = auth("supervisor", sub="zhang"), auth("operator", sub="li"), auth("admin")
        created = await client.post(
            "/api/v1/crews", json={"id": "CREW-1", "name": "Line 1"}, headers=sup
        )
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "available"
        dup = await client.post("/api/v1/crews", json={"id": "CREW-1", "name": "x"}, headers=sup)
        assert dup.status_code == 409
        assert dup.headers["content-type"] == "application/problem+json"
        for k in range(2, 6):
            r = await client.post(
                "/api/v1/crews", json={"id": f"CREW-{k}", "name": f"L{k}"}, headers=sup
            )
            assert r.status_code == 201
        page1 = (await client.get("/api/v1/crews?limit=3", headers=op)).json()
        assert [c["id"] for c in page1["items"]] == ["CREW-1", "CREW-2", "CREW-3"]
        page2 = (
            await client.get(f"/api/v1/crews?limit=3&cursor={page1['next_cursor']}", headers=op)
        ).json()
        assert [c["id"] for c in page2["items"]] == ["CREW-4", "CREW-5"]
        assert page2["next_cursor"] is None
        patched = await client.patch(
            "/api/v1/crews/CREW-2", json={"status": "off", "location": "depot"}, headers=op
        )
        assert patched.status_code == 200
        assert (patched.json()["status"], patched.json()["location"]) == ("off", "depot")
        assert (await client.patch("/api/v1/crews/NOPE", json={}, headers=op)).status_code == 404
        bad = await client.patch("/api/v1/crews/CREW-2", json={"status": "asleep"}, headers=op)
        assert bad.status_code == 422
        assert bad.json()["code"] == "invalid_request"
        assert bad.json()["errors"][0]["loc"][-1] == "status"
        log = (await client.get("/api/v1/audit?action=crew.update", headers=admin)).json()
        assert len(log["items"]) == 1
        entry = log["items"][0]
        assert entry["actor"] == "li"
        assert entry["before"]["status"] == "available"
        assert entry["after"]["status"] == "off"

    async def test_bad_cursor_is_400(self, client: httpx.AsyncClient, auth) -> None:
        r = await client.get("/api/v1/crews?cursor=%%%", headers=auth("viewer"))
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_cursor"


class TestDeadLetters:
    async def test_list_pages_and_filters(
        self, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], auth
    ) -> None:
        await _seed_dead_letters(sessions, 7)
        admin = auth("admin")
        first = (await client.get("/api/v1/dead-letters?limit=5", headers=admin)).json()
        assert [d["id"] for d in first["items"]] == [1, 2, 3, 4, 5]
        rest = (
            await client.get(f"/api/v1/dead-letters?cursor={first['next_cursor']}", headers=admin)
        ).json()
        assert [d["id"] for d in rest["items"]] == [6, 7]
        only = (await client.get("/api/v1/dead-letters?code=schema", headers=admin)).json()
        assert {d["error"]["code"] for d in only["items"]} == {"schema"}
        assert len(only["items"]) == 4

    async def test_replay_republishes_to_the_original_topic_and_marks_it(
        self,
        client: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        bus: MemoryBus,
        auth,
    ) -> None:
        await _seed_dead_letters(sessions, 3)
        admin = auth("admin", sub="root")
        await bus.create_topics(["grid.meter-events.v1"])
        consumer = await bus.consumer(["grid.meter-events.v1"], group_id="check")
        r = await client.post("/api/v1/dead-letters/2/replay", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["replayed_at"] is not None
        records = await consumer.getmany(timeout_s=2.0)
        assert [(x.key, x.value) for x in records] == [(b"M000001", b'{"event_id": "m-1"}')]
        await consumer.stop()
        unreplayed = await client.get("/api/v1/dead-letters?replayed=false", headers=admin)
        assert [d["id"] for d in unreplayed.json()["items"]] == [1, 3]
        missing = await client.post("/api/v1/dead-letters/99/replay", headers=admin)
        assert missing.status_code == 404
        log = (await client.get("/api/v1/audit?action=dead_letter.replay", headers=admin)).json()
        assert [(e["actor"], e["after"]["id"]) for e in log["items"]] == [("root", 2)]
