"""A small feeder, a scenario of wire signals, and a driver for IncidentsService on a virtual
clock; plus a dump of the database rows that must come out identical across runs.

F01-BKR ─┬─ F01-R1 ─┬─ F01-FU1 ─┬─ T11 (5 customers)
         │          │           └─ T12 (5)
         │          └─ F01-FU2 ─┬─ T21 (5)
         │                      └─ T22 (5)
         ├─ F01-FU3 ── T31 (4)
         └─ T01 (1 customer)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.signals import Signal
from services.common.outbox import outbox_table
from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer
from services.incidents import orm

T0 = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)
SIZES = {"T11": 5, "T12": 5, "T21": 5, "T22": 5, "T31": 4, "T01": 1}
PARENT = {"T11": "F01-FU1", "T12": "F01-FU1", "T21": "F01-FU2", "T22": "F01-FU2",
          "T31": "F01-FU3", "T01": "F01-BKR"}  # fmt: skip


def build_topology() -> Topology:
    devices = [
        Device("F01-BKR", "F01", None, "breaker"),
        Device("F01-R1", "F01", "F01-BKR", "recloser"),
        Device("F01-FU1", "F01", "F01-R1", "fuse"),
        Device("F01-FU2", "F01", "F01-R1", "fuse"),
        Device("F01-FU3", "F01", "F01-BKR", "fuse"),
    ]
    transformers = [Transformer(t, PARENT[t], 220, 1) for t in SIZES]
    customers = [Customer(c, "M" + c[1:], t, "residential") for t in SIZES for c in customers_of(t)]
    feeders = [Feeder("F01", "Yunhe 1", "S1", "urban")]
    return Topology.build(feeders, devices, transformers, customers)


def customers_of(*transformers: str) -> list[str]:
    return [f"C-{t}-{i}" for t in transformers for i in range(1, SIZES[t] + 1)]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def signal(sid: str, kind: str, who: str, seconds: float, **data: Any) -> Signal:
    device = kind.startswith("device_")
    return Signal(
        signal_id=sid,
        source="device" if device else ("customer" if kind.startswith("call") else "meter"),
        kind=kind,  # type: ignore[arg-type]
        feeder_id="F01",
        device_id=who if device else None,
        customer_id=None if device else who,
        meter_id=None if device or kind.startswith("call") else "M" + who[1:],
        occurred_at=at(seconds),
        received_at=at(seconds + 2),
        data=data,
    )


def scenario() -> list[tuple[float, list[Signal]]]:
    """(delivery time in s after T0, signals) steps: a fuse outage from lossy last gasps, a
    lone meter that becomes a single-customer outage, a SCADA lockout, restorations, a
    customer still out after the fuse closed (nested), late and duplicate evidence."""
    fu1 = ["C-T11-1", "C-T11-2", "C-T11-3", "C-T12-1", "C-T12-2", "C-T12-4"]
    steps: list[tuple[float, list[Signal]]] = [
        (30, [signal(f"m-off-{c}", "power_off", c, 10 + i) for i, c in enumerate(fu1)]),
        (60, [signal("m-off-lone", "power_off", "C-T31-1", 60)]),
        (100, [signal("d-open-fu2", "device_open", "F01-FU2", 100, lockout=True)]),
        (400, [signal("c-call-1", "call_no_power", "C-T21-2", 390)]),
        (
            1200,
            [signal("d-close-fu1", "device_close", "F01-FU1", 1200)]
            + [signal(f"m-on-{c}", "power_on", c, 1201) for c in fu1[:5]],
        ),
        (1300, [signal("m-on-lone", "power_on", "C-T31-1", 1290)]),
        (1500, [signal("d-close-fu2", "device_close", "F01-FU2", 1500)]),
        # after the nested check (FU1 closed at 1200 + 600 s)
        (1900, [signal("c-still-out", "call_still_out", "C-T12-4", 1900)]),
        (1950, [signal("m-off-late", "power_off", "C-T11-4", 12)]),  # late, inside the window
    ]
    steps.append((2000, list(steps[0][1])))  # redelivered duplicates
    return steps


UNSTABLE = ("version", "updated_at", "customer_minutes")


async def dump(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Rows that an interrupted run must reproduce exactly (ETag versions and write times
    depend on how the work was batched and are left out)."""
    out: dict[str, Any] = {}
    async with sessions() as session:
        inc = orm.incidents
        cols = [c for c in inc.c if c.name not in UNSTABLE]
        out["incidents"] = [
            tuple(r) for r in await session.execute(sa.select(*cols).order_by(inc.c.id))
        ]
        for table in (
            orm.interruptions, orm.incident_customers, orm.timeline, orm.etr_history,
            orm.customer_state, orm.holders, orm.device_state, orm.correlator_timers,
        ):  # fmt: skip
            pk = list(table.primary_key.columns)
            out[table.name] = [
                tuple(r) for r in await session.execute(sa.select(table).order_by(*pk))
            ]
        ob = outbox_table("incidents")
        rows = await session.execute(
            sa.select(ob.c.aggregate_id, ob.c.seq, ob.c.topic, ob.c.payload).order_by(
                ob.c.aggregate_id, ob.c.seq
            )
        )
        out["outbox"] = [(a, s, t, orjson.loads(p)) for a, s, t, p in rows]
    return out
