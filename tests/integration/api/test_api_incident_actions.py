"""Every incident action through the API, with its error cases (404, 409 with allowed,
412 stale If-Match, 428 missing, 422 bad body), the If-Match race and the audit rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from conftest import open_outage  # type: ignore[import-not-found]

PROBLEM = "application/problem+json"


async def _get(client: httpx.AsyncClient, iid: str, headers: dict[str, str]) -> httpx.Response:
    r = await client.get(f"/api/v1/incidents/{iid}", headers=headers)
    assert r.status_code == 200, r.text
    return r


async def _post(
    client: httpx.AsyncClient,
    iid: str,
    action: str,
    body: object,
    headers: dict[str, str],
    etag: str | None,
) -> httpx.Response:
    h = dict(headers)
    if etag is not None:
        h["If-Match"] = etag
    return await client.post(f"/api/v1/incidents/{iid}/{action}", json=body, headers=h)


async def _do(
    client: httpx.AsyncClient, iid: str, action: str, body: object, headers: dict[str, str]
) -> dict[str, object]:
    etag = (await _get(client, iid, headers)).headers["etag"]
    r = await _post(client, iid, action, body, headers, etag)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] != etag
    assert r.headers["etag"] == (await _get(client, iid, headers)).headers["etag"]
    out: dict[str, object] = r.json()
    return out


class TestLifecycleThroughTheApi:
    async def test_every_action_in_order_and_the_audit_trail(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        op, sup = auth("operator", sub="li"), auth("supervisor", sub="zhang")
        created = await client.post(
            "/api/v1/crews", json={"id": "CREW-1", "name": "L1"}, headers=sup
        )
        assert created.status_code == 201
        iid = await open_outage(sessions, handlers, "F001-R1-FU1")
        assert (await _do(client, iid, "acknowledge", {}, op))["acknowledged_at"] is not None
        assert (await _do(client, iid, "crew", {"crew_id": "CREW-1"}, op))["status"] == "dispatched"
        crew = (await client.get("/api/v1/crews", headers=op)).json()["items"][0]
        assert (crew["status"], crew["current_incident_id"]) == ("dispatched", iid)
        assert (await _do(client, iid, "arrived", {}, op))["status"] == "on_site"
        etr = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        detail = await _do(client, iid, "etr", {"etr": etr.isoformat(), "reason": "pole"}, op)
        assert datetime.fromisoformat(str(detail["etr"])) == etr
        assert [e["reason"] for e in detail["etr_history"]] == ["pole"]  # type: ignore[union-attr]
        detail = await _do(client, iid, "notes", {"text": "tree on the line"}, op)
        assert "tree on the line" in [e["detail"] for e in detail["timeline"]]  # type: ignore[union-attr]
        detail = await _do(client, iid, "restore", {}, op)
        assert (detail["status"], detail["customers_out"]) == ("restored", 0)
        detail = await _do(client, iid, "close", {"cause": "vegetation"}, sup)
        assert (detail["status"], detail["cause"]) == ("closed", "vegetation")
        etag = (await _get(client, iid, op)).headers["etag"]
        late = await _post(client, iid, "crew", {"crew_id": "CREW-1"}, op, etag)
        assert late.status_code == 409
        assert late.headers["content-type"] == PROBLEM
        assert (late.json()["code"], late.json()["allowed"]) == ("invalid_transition", [])
        audit = await client.get(f"/api/v1/audit?incident_id={iid}", headers=auth("admin"))
        actions = [(e["actor"], e["action"]) for e in audit.json()["items"]]
        assert actions == [
            ("li", "acknowledge"),
            ("li", "crew"),
            ("li", "arrived"),
            ("li", "etr"),
            ("li", "notes"),
            ("li", "restore"),
            ("zhang", "close"),
        ]
        assert audit.json()["items"][0]["before"]["status"] == "confirmed"

    async def test_partial_restore_split_merge_and_cancel(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        op, sup = auth("operator"), auth("supervisor")
        iid = await open_outage(sessions, handlers, "F001-R1-FU2")
        customers = await client.get(f"/api/v1/incidents/{iid}/customers?limit=200", headers=op)
        ids = [c["customer_id"] for c in customers.json()["items"]]
        assert len(ids) >= 3
        detail = await _do(client, iid, "restore", {"customers": ids[:1]}, op)
        assert detail["customers_out"] == len(ids) - 1
        assert detail["status"] == "confirmed"
        split = await _do(client, iid, "split", {"customers": ids[-1:]}, op)
        assert split["customers_out"] == len(ids) - 2
        other = await open_outage(sessions, handlers, "F001-R2-FU1", n=2)
        merged = await _do(client, other, "merge", {"into": iid}, sup)
        assert (merged["status"], merged["merged_into"]) == ("merged", iid)
        cancelled = await _do(client, iid, "cancel", {"reason": "false alarm"}, sup)
        assert cancelled["status"] == "cancelled"


class TestErrors:
    async def test_not_found_precondition_and_validation(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        op = auth("operator")
        iid = await open_outage(sessions, handlers, "F001-R1-FU3")
        etag = (await _get(client, iid, op)).headers["etag"]
        missing = await _post(client, "NOPE-1", "acknowledge", {}, op, '"NOPE-1-1"')
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        assert (await client.get("/api/v1/incidents/NOPE-1", headers=op)).status_code == 404
        no_match = await _post(client, iid, "acknowledge", {}, op, None)
        assert (no_match.status_code, no_match.json()["code"]) == (428, "precondition_required")
        stale = await _post(client, iid, "acknowledge", {}, op, '"' + iid + '-999"')
        assert (stale.status_code, stale.json()["code"]) == (412, "version_mismatch")
        naive = await _post(client, iid, "etr", {"etr": "2026-07-14T03:00:00"}, op, etag)
        assert naive.status_code == 422
        assert naive.headers["content-type"] == PROBLEM
        assert naive.json()["errors"][0]["loc"] == ["body", "etr"]
        extra = await _post(client, iid, "notes", {"text": "x", "bogus": 1}, op, etag)
        assert extra.status_code == 422
        no_crew = await _post(client, iid, "crew", {"crew_id": "GHOST"}, op, etag)
        assert (no_crew.status_code, no_crew.json()["code"]) == (422, "invalid_request")
        not_json = await client.post(
            f"/api/v1/incidents/{iid}/notes",
            content=b"{",
            headers={**op, "If-Match": etag, "Content-Type": "application/json"},
        )
        assert not_json.status_code == 422
        forbidden = await _post(client, iid, "close", {"cause": "x"}, op, etag)
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
        early_close = await _post(client, iid, "close", {"cause": "x"}, auth("supervisor"), etag)
        assert early_close.status_code == 409
        assert "dispatched" in early_close.json()["allowed"]
        # nothing above changed the incident
        assert (await _get(client, iid, op)).headers["etag"] == etag

    async def test_two_operators_with_one_etag_get_exactly_one_412(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        iid = await open_outage(sessions, handlers, "F001-R2-FU2")
        etag = (await _get(client, iid, auth("viewer"))).headers["etag"]
        results = await asyncio.gather(
            _post(client, iid, "notes", {"text": "a"}, auth("operator", sub="a"), etag),
            _post(client, iid, "notes", {"text": "b"}, auth("operator", sub="b"), etag),
        )
        assert sorted(r.status_code for r in results) == [200, 412]
