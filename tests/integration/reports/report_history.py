"""A small hand-made history for the report tests (times are Asia/Shanghai local).

Topology: feeder F1 (substation S1, urban) with transformers T1 (C1, C2) and T3 (area
rural override, C5); feeder F2 (S2, rural) with T2 (C3, C4). Five customers served.

July 2026 outage history:
- INC-A (urban) 07-02 10:00: C1 out 60 min; C2's 90-minute interruption moved into the
  nested INC-B (parent INC-A) — one interruption, counted once;
- INC-C 07-10 08:00: C1 out again, 40 min (C1 is interrupted twice);
- INC-D 07-05 12:00: momentary, C3 and C4 out 2 min;
- INC-E 07-15 09:00: planned, C5 out 240 min (planned outage P-1, notice 5 days ahead);
- INC-F (rural) 07-20 20:00: C3 out 120 min;
- INC-G 06-30 23:00: C4 out 120 min across the period start (60 min fall in July).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology import orm as topo
from services.incidents import orm
from services.incidents import quality_orm as q
from services.incidents.interruption_groups import stamp_all_missing

CST = timezone(timedelta(hours=8))
JULY_START = datetime(2026, 7, 1, tzinfo=CST)
JULY_END = datetime(2026, 8, 1, tzinfo=CST)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local (UTC+8) time in 2026, as UTC (stored times are UTC; SQLite drops offsets)."""
    return datetime(2026, month, day, hour, minute, tzinfo=CST).astimezone(UTC)


CUSTOMERS = {"C1": "T1", "C2": "T1", "C3": "T2", "C4": "T2", "C5": "T3"}


async def insert_topology(session: AsyncSession, customers: dict[str, str] = CUSTOMERS) -> None:
    """Two feeders, three transformers and the given customer → transformer map."""
    await session.execute(sa.insert(topo.feeders), [
        {"id": "F1", "name": "Feeder 1", "substation": "S1", "area": "urban"},
        {"id": "F2", "name": "Feeder 2", "substation": "S2", "area": "rural"},
    ])  # fmt: skip
    await session.execute(sa.insert(topo.devices), [
        {"id": "F1-BKR", "feeder": "F1", "parent": None, "kind": "breaker"},
        {"id": "F2-BKR", "feeder": "F2", "parent": None, "kind": "breaker"},
    ])  # fmt: skip
    await session.execute(sa.insert(topo.transformers), [
        {"id": "T1", "device": "F1-BKR", "nominal_v": 220.0, "phases": 1, "area": None},
        {"id": "T2", "device": "F2-BKR", "nominal_v": 220.0, "phases": 1, "area": None},
        {"id": "T3", "device": "F1-BKR", "nominal_v": 220.0, "phases": 1, "area": "rural"},
    ])  # fmt: skip
    await session.execute(sa.insert(topo.customers), [
        {"id": cid, "meter": "M" + cid[1:], "transformer": tid, "class": "residential",
         "critical": False, "member": False, "language": "zh-CN", "quiet_hours": None,
         "sms": None, "email": None, "wechat": None, "webhook": None}
        for cid, tid in customers.items()
    ])  # fmt: skip


def incident_row(iid: str, detected: datetime, **kw: Any) -> dict[str, Any]:
    """An ``incidents`` row with defaults for the columns a report does not read."""
    row: dict[str, Any] = {
        "id": iid, "kind": "outage", "status": "closed", "feeder_id": "F1", "device_id": None,
        "transformer_id": None, "customer_id": None, "area": "urban", "detected_at": detected,
        "confirmed_at": None, "acknowledged_at": None, "etr": None, "restored_at": None,
        "closed_at": None, "cause": None, "parent_incident_id": None, "merged_into": None,
        "crew_id": None, "arrived_at": None, "customers_affected": 1, "customers_out": 0,
        "customer_minutes": 0.0, "etr_slips": 0, "seq": 1, "version": 1, "sla": {},
        "impact": None, "snapshot": {}, "updated_at": detected,
    }  # fmt: skip
    row.update(kw)
    return row


def interruption(
    iid: str, cid: str, start: datetime, end: datetime | None, *,
    planned: bool = False, momentary: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """An ``interruptions`` row."""
    return {
        "incident_id": iid, "customer_id": cid, "start": start, "start_source": "meter",
        "end": end, "end_source": None if end is None else "meter", "unverified": False,
        "momentary": momentary, "planned": planned,
    }  # fmt: skip


async def insert_rows(
    session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert rows when there are any; interruption rows get their groups from the
    topology, as the state store stamps them (insert the topology first)."""
    if rows:
        await session.execute(sa.insert(table), list(rows))
        if table is orm.interruptions:
            await stamp_all_missing(session)


async def insert_history(session: AsyncSession) -> None:
    """The whole hand-made history of the module docstring."""
    await insert_topology(session)
    await insert_rows(session, orm.incidents, [
        incident_row("INC-A", at(7, 2, 10, 1), acknowledged_at=at(7, 2, 10, 3),
                     arrived_at=at(7, 2, 10, 40), restored_at=at(7, 2, 11), cause="tree",
                     customers_affected=2),
        incident_row("INC-B", at(7, 2, 11, 10), parent_incident_id="INC-A",
                     acknowledged_at=at(7, 2, 11, 12), restored_at=at(7, 2, 11, 30)),
        incident_row("INC-C", at(7, 10, 8), acknowledged_at=at(7, 10, 8, 20),
                     arrived_at=at(7, 10, 8, 30), restored_at=at(7, 10, 8, 40),
                     cause="equipment"),
        incident_row("INC-D", at(7, 5, 12), status="momentary", feeder_id="F2", area="rural"),
        incident_row("INC-E", at(7, 15, 9), kind="planned", status="completed"),
        incident_row("INC-F", at(7, 20, 20), feeder_id="F2", area="rural",
                     acknowledged_at=at(7, 20, 20, 4), arrived_at=at(7, 20, 21),
                     restored_at=at(7, 20, 22)),
        incident_row("INC-G", at(6, 30, 23), feeder_id="F2", area="rural",
                     restored_at=at(7, 1, 1)),
    ])  # fmt: skip
    await insert_rows(session, orm.interruptions, [
        interruption("INC-A", "C1", at(7, 2, 10), at(7, 2, 11)),
        interruption("INC-B", "C2", at(7, 2, 10), at(7, 2, 11, 30)),
        interruption("INC-C", "C1", at(7, 10, 8), at(7, 10, 8, 40)),
        interruption("INC-D", "C3", at(7, 5, 12), at(7, 5, 12, 2), momentary=True),
        interruption("INC-D", "C4", at(7, 5, 12), at(7, 5, 12, 2), momentary=True),
        interruption("INC-E", "C5", at(7, 15, 9), at(7, 15, 13), planned=True),
        interruption("INC-F", "C3", at(7, 20, 20), at(7, 20, 22)),
        interruption("INC-G", "C4", at(6, 30, 23), at(7, 1, 1)),
    ])  # fmt: skip
    await insert_rows(session, orm.incident_customers, [
        {"incident_id": i, "customer_id": c}
        for i, c in [("INC-A", "C1"), ("INC-A", "C2"), ("INC-B", "C2"), ("INC-C", "C1"),
                     ("INC-D", "C3"), ("INC-D", "C4"), ("INC-E", "C5"), ("INC-F", "C3"),
                     ("INC-G", "C4")]
    ])  # fmt: skip
    await insert_rows(session, orm.planned_outages, [
        {"id": "P-1", "kind": "planned", "status": "completed", "feeder_id": "F1",
         "device_id": None, "transformer_id": "T3", "starts_at": at(7, 15, 9),
         "ends_at": at(7, 15, 13), "reason": "maintenance", "incident_id": "INC-E",
         "created_by": "planner", "created_at": at(7, 1, 9)},
    ])  # fmt: skip
    await insert_rows(session, q.first_notices, [
        {"incident_id": i, "customer_id": c, "sent_at": t, "stage": s, "channel": "sms"}
        for i, c, t, s in [
            ("INC-A", "C1", at(7, 2, 10, 10), "outage_detected"),
            ("INC-B", "C2", at(7, 2, 11, 15), "outage_detected"),
            ("INC-F", "C3", at(7, 20, 20, 14), "outage_detected"),
            ("INC-E", "C5", at(7, 10, 9), "planned_notice"),
        ]
    ])  # fmt: skip
    await insert_rows(session, orm.etr_history, [
        {"incident_id": i, "n": n, "at": a, "etr": e, "actor": "op", "reason": ""}
        for i, n, a, e in [
            ("INC-A", 1, at(7, 2, 10, 20), at(7, 2, 11, 30)),
            ("INC-A", 2, at(7, 2, 10, 50), at(7, 2, 10, 55)),
            ("INC-C", 1, at(7, 10, 8, 25), at(7, 10, 9, 30)),
            ("INC-F", 1, at(7, 20, 22, 30), at(7, 20, 23)),
        ]
    ])  # fmt: skip
    await insert_rows(session, q.customer_impacts, [
        impact_row("INC-A", "C1", {"duration": 20.0}),
        impact_row("INC-A", "C2", {"duration": 25.0, "etr_error": 5.0}),
        impact_row("INC-C", "C1", {"duration": 10.0, "not_notified": 30.0}),
        impact_row("INC-F", "C3", {"duration": 10.0}),
    ])  # fmt: skip
    await insert_rows(session, q.surveys, [
        {"event_id": e, "customer_id": c, "incident_id": i, "score": s, "occurred_at": t}
        for e, c, i, s, t in [
            ("s1", "C1", "INC-A", 4, at(7, 3, 9)),
            ("s2", "C1", "INC-C", 2, at(7, 11, 9)),
            ("s3", "C4", "INC-G", 1, at(7, 1, 9)),
        ]
    ])  # fmt: skip
    await insert_rows(session, q.calibrations, [
        {"at": at(7, 1, 0), "samples": 10, "r2_before": 0.1, "r2_after": 0.2, "weights": {},
         "applied": False},
        {"at": at(7, 25, 0), "samples": 20, "r2_before": 0.3, "r2_after": 0.42, "weights": {},
         "applied": True},
    ])  # fmt: skip
    await insert_voltage(session)


def impact_row(iid: str, cid: str, components: dict[str, float]) -> dict[str, Any]:
    """A ``customer_impacts`` row whose impact is the sum of its components."""
    return {
        "incident_id": iid, "customer_id": cid, "impact": sum(components.values()),
        "components": components, "inputs": {}, "interruption_min": 0.0, "final": True,
        "computed_at": at(7, 31, 0),
    }  # fmt: skip


async def insert_voltage(session: AsyncSession) -> None:
    """Compliance minutes for M1 (urban, two July days + one June day) and M3 (rural)."""
    from datetime import date

    await insert_rows(session, q.voltage_minutes, [
        {"meter_id": m, "day": d, "transformer_id": t, "feeder_id": f, "area": a,
         "minutes_monitored": mon, "minutes_out_of_band": out}
        for m, d, t, f, a, mon, out in [
            ("M1", date(2026, 6, 30), "T1", "F1", "urban", 1440.0, 1440.0),
            ("M1", date(2026, 7, 1), "T1", "F1", "urban", 1440.0, 30.0),
            ("M1", date(2026, 7, 2), "T1", "F1", "urban", 1440.0, 0.0),
            ("M3", date(2026, 7, 3), "T2", "F2", "rural", 1440.0, 144.0),
        ]
    ])  # fmt: skip
    await insert_rows(session, q.power_quality_counts, [
        {"meter_id": m, "day": d, "kind": k, "category": c, "transformer_id": t,
         "feeder_id": f, "area": a, "count": n}
        for m, d, k, c, t, f, a, n in [
            ("M1", date(2026, 7, 1), "sag", "instantaneous", "T1", "F1", "urban", 2),
            ("M1", date(2026, 7, 2), "sag", "instantaneous", "T1", "F1", "urban", 1),
            ("M3", date(2026, 7, 3), "swell", "momentary", "T2", "F2", "rural", 1),
        ]
    ])  # fmt: skip
