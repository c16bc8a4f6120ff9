"""The call-centre lookup's ``last_message``: learned from notify's ``notify.deliveries.v1``
outcomes by the incidents service's deliveries handler, answered on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from conftest import open_outage  # type: ignore[import-not-found]

from services.common.bus.base import Record
from services.common.db import UnitOfWork
from services.incidents.quality_hooks import apply_deliveries


def _delivery(
    n: int, customer: str, incident: str, stage: str, at: datetime, status: str = "sent"
) -> Record:
    value = {
        "customer_id": customer, "incident_id": incident, "job_id": f"J-{n}", "stage": stage,
        "channel": "sms", "status": status, "attempts": 1, "occurred_at": at.isoformat(),
        "error": None if status == "sent" else "gateway 500",
    }  # fmt: skip
    return Record("notify.deliveries.v1", 0, n, customer.encode(), orjson.dumps(value), 0)


class TestLastMessage:
    async def test_lookup_shows_the_latest_sent_message(
        self, client: httpx.AsyncClient, sessions, handlers, auth
    ) -> None:
        v = auth("viewer")
        iid = await open_outage(sessions, handlers, "F001-R1-FU1")
        topo = handlers.cache.topology
        customer, other = sorted(topo.customers_below("F001-R1-FU1"))[:2]
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

        async def deliver(*records: Record) -> None:
            async with UnitOfWork(sessions) as uow:
                await apply_deliveries(uow, list(records), handlers)
                await uow.commit()

        async def last(q: str) -> dict[str, Any] | None:
            r = await client.get("/api/v1/customers/lookup", params={"q": q}, headers=v)
            assert r.status_code == 200, r.text
            return r.json()["last_message"]  # type: ignore[no-any-return]

        assert await last(customer) is None
        await deliver(_delivery(1, customer, iid, "outage_detected", t0))
        first = await last(topo.customers[customer].meter)
        assert first is not None
        assert (first["incident_id"], first["stage"], first["channel"], first["job_id"]) == (
            iid, "outage_detected", "sms", "J-1",
        )  # fmt: skip
        assert datetime.fromisoformat(first["sent_at"]) == t0

        # a later message replaces it; a failed one and a late, older outcome do not
        await deliver(
            _delivery(2, customer, iid, "etr_set", t0 + timedelta(minutes=10)),
            _delivery(3, customer, iid, "etr_changed", t0 + timedelta(minutes=20), "failed"),
        )
        await deliver(_delivery(4, customer, iid, "outage_detected", t0 + timedelta(minutes=5)))
        latest = await last(customer)
        assert latest is not None
        assert (latest["stage"], latest["job_id"]) == ("etr_set", "J-2")
        assert datetime.fromisoformat(latest["sent_at"]) == t0 + timedelta(minutes=10)

        # only the customer the messages went to
        assert await last(other) is None
