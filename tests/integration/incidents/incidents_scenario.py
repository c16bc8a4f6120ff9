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


def tx(feeder: str, t: str) -> str:
    """Transformer ``t`` of the drawing on ``feeder`` (F01 keeps the bare names)."""
    return t if feeder == "F01" else f"{feeder}{t}"


def build_topology(feeders: tuple[str, ...] = ("F01",)) -> Topology:
    """The drawing, once per feeder."""
    devices, transformers, customers = [], [], []
    for f in feeders:
        devices += [
            Device(f"{f}-BKR", f, None, "breaker"),
            Device(f"{f}-R1", f, f"{f}-BKR", "recloser"),
            Device(f"{f}-FU1", f, f"{f}-R1", "fuse"),
            Device(f"{f}-FU2", f, f"{f}-R1", "fuse"),
            Device(f"{f}-FU3", f, f"{f}-BKR", "fuse"),
        ]
        for t in SIZES:
            parent = PARENT[t].replace("F01", f)
            transformers.append(Transformer(tx(f, t), parent, 220, 1))
            customers += [
                Customer(c, "M" + c[1:], tx(f, t), "residential")
                for c in customers_of(tx(f, t), SIZES[t])
            ]
    feeder_rows = [Feeder(f, f"Yunhe {f}", "S1", "urban") for f in feeders]
    return Topology.build(feeder_rows, devices, transformers, customers)


def customers_of(t: str, n: int) -> list[str]:
    return [f"C-{t}-{i}" for i in range(1, n + 1)]


def at(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def signal(
    sid: str, kind: str, who: str, seconds: float, feeder: str = "F01", base: datetime = T0,
    **data: Any,
) -> Signal:  # fmt: skip
    device = kind.startswith("device_")
    return Signal(
        signal_id=sid,
        source="device" if device else ("customer" if kind.startswith("call") else "meter"),
        kind=kind,  # type: ignore[arg-type]
        feeder_id=feeder,
        device_id=who if device else None,
        customer_id=None if device else who,
        meter_id=None if device or kind.startswith("call") else "M" + who[1:],
        occurred_at=at(seconds, base),
        received_at=at(seconds + 2, base),
        data=data,
    )


def scenario(
    feeder: str = "F01", base: datetime = T0, tag: str = ""
) -> list[tuple[float, list[Signal]]]:
    """(delivery time in s after ``base``, signals) steps: a fuse outage from lossy last
    gasps, a lone meter that becomes a single-customer outage, a SCADA lockout,
    restorations, a customer still out after the fuse closed (nested), late and duplicate
    evidence. ``tag`` makes the signal ids unique per repetition."""

    def c(t: str, i: int) -> str:
        return f"C-{tx(feeder, t)}-{i}"

    def sig(sid: str, kind: str, who: str, seconds: float, **data: Any) -> Signal:
        return signal(f"{tag}{feeder}-{sid}", kind, who, seconds, feeder, base, **data)

    fu1 = [c("T11", 1), c("T11", 2), c("T11", 3), c("T12", 1), c("T12", 2), c("T12", 4)]
    fu2, lone = f"{feeder}-FU2", c("T31", 1)
    steps: list[tuple[float, list[Signal]]] = [
        (30, [sig(f"m-off-{x}", "power_off", x, 10 + i) for i, x in enumerate(fu1)]),
        (60, [sig("m-off-lone", "power_off", lone, 60)]),
        (100, [sig("d-open-fu2", "device_open", fu2, 100, lockout=True)]),
        (400, [sig("c-call-1", "call_no_power", c("T21", 2), 390)]),
        (
            1200,
            [sig("d-close-fu1", "device_close", f"{feeder}-FU1", 1200)]
            + [sig(f"m-on-{x}", "power_on", x, 1201) for x in fu1[:5]],
        ),
        (1300, [sig("m-on-lone", "power_on", lone, 1290)]),
        (1500, [sig("d-close-fu2", "device_close", fu2, 1500)]),
        # after the nested check (FU1 closed at 1200 + 600 s)
        (1900, [sig("c-still-out", "call_still_out", c("T12", 4), 1900)]),
        (1950, [sig("m-off-late", "power_off", c("T11", 4), 12)]),  # late, inside the window
    ]
    steps.append((2000, list(steps[0][1])))  # redelivered duplicates
    return steps


UNSTABLE = ("version", "updated_at", "customer_minutes")
# keys of the impact record that say when it was computed (write time, like updated_at)
UNSTABLE_IMPACT = ("computed_at",)


async def dump(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Rows that an interrupted run must reproduce exactly (ETag versions and write times
    depend on how the work was batched and are left out)."""
    out: dict[str, Any] = {}
    async with sessions() as session:
        inc = orm.incidents
        cols = [c for c in inc.c if c.name not in UNSTABLE]
        out["incidents"] = [
            tuple(_stable(c.name, v) for c, v in zip(cols, r, strict=True))
            for r in await session.execute(sa.select(*cols).order_by(inc.c.id))
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


def _stable(column: str, value: Any) -> Any:
    """A live (not final) impact is computed from what the database holds when the incident
    last changed, which depends on how signals were batched (like customer_minutes); only
    the final one, fixed at close, must match exactly."""
    if column == "impact" and isinstance(value, dict):
        if not value.get("final"):
            return "live"
        return {k: v for k, v in value.items() if k not in UNSTABLE_IMPACT}
    return value
