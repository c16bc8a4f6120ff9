"""Incident list filters and pagination, affected customers, the call-centre lookup and
planned outages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from conftest import open_outage  # type: ignore[import-not-found]


class TestIncidentList:
    async def test_filters_and_cursor_pages(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        v = auth("viewer")
        devices = ["F001-R1-FU1", "F001-R1-FU2", "F001-R1-FU3", "F001-R2-FU1", "F001-R2-FU2"]
        ids = [await open_outage(sessions, handlers, d, n=k) for k, d in enumerate(devices)]
        seen: list[str] = []
        url = "/api/v1/incidents?limit=2"
        while True:
            page = (await client.get(url, headers=v)).json()
            assert len(page["items"]) <= 2
            seen += [i["id"] for i in page["items"]]
            if page["next_cursor"] is None:
                break
            url = f"/api/v1/incidents?limit=2&cursor={page['next_cursor']}"
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(set(seen))
        r = await client.get(
            "/api/v1/incidents?status=confirmed&kind=outage&feeder=F001", headers=v
        )
        assert len(r.json()["items"]) == 5
        assert (await client.get("/api/v1/incidents?feeder=F002", headers=v)).json()["items"] == []
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        r = await client.get("/api/v1/incidents", params={"since": future}, headers=v)
        assert r.json()["items"] == []
        r = await client.get("/api/v1/incidents", params={"q": "R2-FU2"}, headers=v)
        assert [i["id"] for i in r.json()["items"]] == [ids[4]]
        assert (await client.get("/api/v1/incidents?limit=201", headers=v)).status_code == 422
        assert (await client.get("/api/v1/incidents?cursor=zz", headers=v)).status_code == 400
        assert (await client.get("/api/v1/incidents?area=moon", headers=v)).status_code == 422

    async def test_affected_customers_page(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        v = auth("viewer")
        iid = await open_outage(sessions, handlers, "F001-R1")
        first = (await client.get(f"/api/v1/incidents/{iid}/customers?limit=50", headers=v)).json()
        second = (
            await client.get(
                f"/api/v1/incidents/{iid}/customers?limit=50&cursor={first['next_cursor']}",
                headers=v,
            )
        ).json()
        ids = [c["customer_id"] for c in first["items"] + second["items"]]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids) == 50 + len(second["items"])
        assert all(c["end"] is None for c in first["items"])
        missing = await client.get("/api/v1/incidents/NOPE/customers", headers=v)
        assert missing.status_code == 404


class TestCustomerLookup:
    async def test_by_id_meter_and_phone(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        v = auth("viewer")
        topo = handlers.cache.topology
        iid = await open_outage(sessions, handlers, "F001-R1-FU1")
        customer = sorted(topo.customers_below("F001-R1-FU1"))[0]
        c = topo.customers[customer]
        for q in (c.id, c.meter, c.contacts.sms):
            r = await client.get("/api/v1/customers/lookup", params={"q": q}, headers=v)
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["customer"]["id"], body["out"], body["incident"]["id"]) == (
                customer,
                True,
                iid,
            )
            assert body["last_message"] is None
        unaffected = sorted(topo.customers_below("F001-R2-FU4"))[0]
        r = await client.get(f"/api/v1/customers/lookup?q={unaffected}", headers=v)
        assert (r.json()["out"], r.json()["incident"]) == (False, None)
        assert (await client.get("/api/v1/customers/lookup?q=ZZZ", headers=v)).status_code == 404
        assert (await client.get("/api/v1/customers/lookup", headers=v)).status_code == 422


class TestPlannedOutages:
    async def test_schedule_start_complete(self, client: httpx.AsyncClient, handlers, auth) -> None:
        sup, v = auth("supervisor", sub="wang"), auth("viewer")
        start = datetime.now(UTC) + timedelta(days=8)
        body = {
            "feeder_id": "F001",
            "device_id": "F001-R2-FU3",
            "reason": "maintenance",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=4)).isoformat(),
        }
        created = await client.post("/api/v1/planned-outages", json=body, headers=sup)
        assert created.status_code == 201, created.text
        planned = created.json()
        assert planned["status"] == "scheduled"
        pid = planned["id"]
        incident = (await client.get(f"/api/v1/incidents/{pid}", headers=v)).json()
        expected = len(list(handlers.cache.topology.customers_below("F001-R2-FU3")))
        assert (incident["kind"], incident["status"]) == ("planned", "scheduled")
        assert (incident["customers_affected"], incident["customers_out"]) == (expected, 0)
        again = await client.post(f"/api/v1/planned-outages/{pid}/complete", headers=sup)
        assert (again.status_code, again.json()["allowed"]) == (409, ["cancelled", "in_progress"])
        started = await client.post(f"/api/v1/planned-outages/{pid}/start", headers=sup)
        assert started.json()["status"] == "in_progress"
        incident = (await client.get(f"/api/v1/incidents/{pid}", headers=v)).json()
        assert (incident["status"], incident["customers_out"]) == ("in_progress", expected)
        done = await client.post(f"/api/v1/planned-outages/{pid}/complete", headers=sup)
        assert done.json()["status"] == "completed"
        incident = (await client.get(f"/api/v1/incidents/{pid}", headers=v)).json()
        assert (incident["status"], incident["customers_out"]) == ("completed", 0)
        assert [e["type"] for e in incident["timeline"]] == [
            "planned_scheduled",
            "planned_started",
            "planned_completed",
        ]
        listed = (await client.get("/api/v1/planned-outages", headers=v)).json()["items"]
        assert [p["id"] for p in listed] == [pid]
        audit = await client.get(f"/api/v1/audit?incident_id={pid}", headers=auth("admin"))
        assert [e["action"] for e in audit.json()["items"]] == [
            "planned.create",
            "planned.in_progress",
            "planned.completed",
        ]

    async def test_invalid_requests(self, client: httpx.AsyncClient, auth) -> None:
        sup = auth("supervisor")
        start = datetime.now(UTC) + timedelta(days=8)
        base = {
            "feeder_id": "F001",
            "reason": "x",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        }
        for bad in (
            {"feeder_id": "F999"},
            {"device_id": "F002-R1"},
            {"ends_at": start.isoformat()},
            {"starts_at": "2026-07-14T00:00:00"},
        ):
            r = await client.post("/api/v1/planned-outages", json={**base, **bad}, headers=sup)
            assert r.status_code == 422, (bad, r.text)
        missing = await client.post("/api/v1/planned-outages/PLN-NOPE/start", headers=sup)
        assert missing.status_code == 404


class TestReports:
    async def test_formats_and_period_checks(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        m = auth("manager")
        await open_outage(sessions, handlers, "F001-R1-FU1")
        now = datetime.now(UTC)
        period = {
            "start": (now - timedelta(days=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
        }
        for kind in ("reliability", "sla", "voltage", "satisfaction"):
            r = await client.get(f"/api/v1/reports/{kind}", params=period, headers=m)
            assert r.status_code == 200, (kind, r.text)
            assert r.headers["content-type"].startswith("application/json")
            assert "period" in r.json()
        csv = await client.get("/api/v1/reports/sla", params={**period, "format": "csv"}, headers=m)
        assert csv.headers["content-type"].startswith("text/csv")
        html = await client.get(
            "/api/v1/reports/reliability",
            params={**period, "format": "html", "group_by": "area"},
            headers=m,
        )
        assert html.headers["content-type"].startswith("text/html")
        assert "<html" in html.text.lower()
        backwards = {"start": period["end"], "end": period["start"]}
        r = await client.get("/api/v1/reports/sla", params=backwards, headers=m)
        assert r.status_code == 422
        r = await client.get(
            "/api/v1/reports/sla",
            params={"start": "1990-01-01T00:00:00Z", **{"end": period["end"]}},
            headers=m,
        )
        assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
        r = await client.get("/api/v1/reports/bogus", params=period, headers=m)
        assert r.status_code == 422
