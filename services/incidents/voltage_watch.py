"""Voltage incidents from readings and low_voltage reports (DESIGN section 5 point 7).

One :class:`~services.incidents.domain.voltage_monitor.VoltageMonitor` per transformer, kept
in memory between batches. A monitor not in memory is rebuilt from PostgreSQL: the open
voltage incident (its ``detected_at`` and the meters out of band since), the last
resolution, and the transformer's readings and low_voltage reports of the last
:data:`REBUILD_WINDOW`, replayed without emitting (their effects are already stored).

Monitors change inside a unit of work that may roll back, so a transaction works on copies
(kept in ``session.info``) that replace the cached ones only once it has committed; a
rolled-back batch is then re-applied to the state it started from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.policy import Policy
from services.common.topology.model import Topology
from services.incidents import orm
from services.incidents.domain import lifecycle, policy_rules
from services.incidents.domain.model import Incident
from services.incidents.domain.voltage import VoltageReading
from services.incidents.domain.voltage_monitor import (
    LowVoltageReport,
    VoltageEvent,
    VoltageMonitor,
    VoltageOpened,
)
from services.incidents.quality_orm import customer_reports
from services.incidents.state_store import IncidentMeta, load_incidents, utc
from services.incidents.voltage_store import out_of_band_meters, recent_readings

ACTOR = "voltage_monitor"
REBUILD_WINDOW = timedelta(hours=24)
_SESSION_KEY = "outagedesk.voltage_monitors"


def voltage_incident_id(transformer_id: str, opened_at: datetime) -> str:
    """Deterministic, so re-applying the same readings can never open a second incident."""
    return f"VOLT-{transformer_id}-{opened_at:%Y%m%d%H%M%S}"


class VoltageWatch:
    """Monitors per transformer, and the voltage incidents their transitions create."""

    def __init__(self, topology: Callable[[], Topology], policy: Policy) -> None:
        self._topology_source = topology
        self._seen_topology: Topology | None = None
        self.policy = policy
        self.rules = policy_rules.voltage_rules(policy)
        self._monitors: dict[str, VoltageMonitor] = {}
        self.rebuilds = 0

    @property
    def topology(self) -> Topology:
        """The current topology (the service's cache); a new one drops every monitor."""
        current = self._topology_source()
        if current is not self._seen_topology:
            self._seen_topology = current
            self._monitors.clear()
        return current

    def forget(self) -> None:
        """Drop every cached monitor (e.g. after a partition revocation)."""
        self._monitors.clear()

    def in_band(self, transformer_id: str, v_avg: float) -> bool:
        """Whether ``v_avg`` is inside the policy profile's band for the transformer."""
        t = self.topology.transformers[transformer_id]
        return policy_rules.voltage_band(self.policy, t.nominal_v, t.phases).contains(v_avg)

    async def monitor(self, session: AsyncSession, transformer_id: str, at: datetime,
                      exclude: Sequence[str] = ()) -> VoltageMonitor:  # fmt: skip
        """This transaction's monitor of a transformer (rebuilt when not cached)."""
        local: dict[str, VoltageMonitor] = session.info.get(_SESSION_KEY, {})
        if not local:
            session.info[_SESSION_KEY] = local
            event.listen(session.sync_session, "after_commit", self._promote, once=True)
        found = local.get(transformer_id)
        if found is not None:
            return found
        cached = self._monitors.get(transformer_id)
        if cached is not None:
            local[transformer_id] = cached.clone()
        else:
            local[transformer_id] = await self._rebuild(session, transformer_id, at, exclude)
        return local[transformer_id]

    def _promote(self, sync_session: Any) -> None:
        local: dict[str, VoltageMonitor] = sync_session.info.pop(_SESSION_KEY, {})
        self._monitors.update(local)

    async def _rebuild(
        self, session: AsyncSession, transformer_id: str, at: datetime, exclude: Sequence[str]
    ) -> VoltageMonitor:
        self.rebuilds += 1
        t = self.topology.transformers[transformer_id]
        band = policy_rules.voltage_band(self.policy, t.nominal_v, t.phases)
        customers = self.topology.customers_by_transformer.get(transformer_id, [])
        meters = [self.topology.customers[c].meter for c in customers]
        open_inc = await open_voltage_row(session, transformer_id)
        last_resolved = await _last_resolution(session, transformer_id)
        opened_at = utc(open_inc.detected_at) if open_inc is not None else None
        involved: set[str] = set()
        if opened_at is not None:
            involved = await out_of_band_meters(session, transformer_id, opened_at)
        monitor = VoltageMonitor(
            transformer_id, meters, band, self.rules, opened_at=opened_at, involved=involved,
            resolved_at=last_resolved,
        )  # fmt: skip
        since = at - REBUILD_WINDOW
        if last_resolved is not None and opened_at is None:
            since = min(since, last_resolved)
        for reading in await recent_readings(session, transformer_id, since, exclude):
            monitor.add_reading(reading)  # replayed: its transitions are already stored
        for report in await _recent_reports(session, transformer_id, since, exclude):
            if report.meter_id:
                monitor.add_report(report)
        return monitor

    def build_opened(self, e: VoltageOpened) -> Incident:
        """A new voltage incident for a transformer, its ``voltage_opened`` event recorded."""
        tx = e.transformer_id
        feeder = self.topology.devices[self.topology.transformers[tx].device].feeder
        customers = self.topology.customers_by_transformer.get(tx, [])
        inc = Incident(
            id=voltage_incident_id(tx, e.occurred_at), kind="voltage",
            status=lifecycle.INITIAL_STATUS["voltage"], feeder_id=feeder,
            area=self.topology.area_of_transformer(tx), detected_at=e.occurred_at,
            transformer_id=tx, customers_affected=set(customers),
        )  # fmt: skip
        why = (
            f"{len(e.meters)} meter(s) out of band on {tx}"
            if e.trigger == "readings"
            else f"low voltage reported by {', '.join(e.reporting_customers)}, confirmed"
        )
        inc.record("voltage_opened", e.occurred_at, ACTOR, why, added=customers,
                   reported=e.reporters)  # fmt: skip
        if e.trigger == "report":
            # a customer's report and a reading agree: two independent pieces of evidence
            lifecycle.confirm(inc, e.occurred_at, ACTOR, "customer report confirmed by reading")
        return inc


async def apply_transitions(
    session: AsyncSession, watch: VoltageWatch, events: Sequence[VoltageEvent]
) -> tuple[list[Incident], dict[str, IncidentMeta]]:
    """Voltage incidents opened or resolved by monitor transitions (not yet saved), and the
    metas of those loaded from the database."""
    out: dict[str, Incident] = {}
    metas: dict[str, IncidentMeta] = {}
    for e in events:
        if isinstance(e, VoltageOpened):
            inc = watch.build_opened(e)
            exists = await session.scalar(
                sa.select(orm.incidents.c.id).where(orm.incidents.c.id == inc.id)
            )
            if exists is None and inc.id not in out:
                out[inc.id] = inc
            continue
        current = next((i for i in out.values() if i.transformer_id == e.transformer_id
                        and i.status in ("detected", "confirmed")), None)  # fmt: skip
        if current is None:
            row = await open_voltage_row(session, e.transformer_id)
            if row is None:
                continue
            incs, loaded = await load_incidents(session, orm.incidents.c.id == row.id)
            current = incs[row.id]
            metas.update(loaded)
            out[current.id] = current
        current.restored_at = e.occurred_at
        lifecycle.transition(
            current, "resolved", e.occurred_at, ACTOR,
            f"two consecutive in-band readings from {len(e.meters)} meter(s)",
        )  # fmt: skip
    return list(out.values()), metas


async def open_voltage_row(session: AsyncSession, transformer_id: str) -> Any:
    """The transformer's open voltage incident row (id, detected_at), or None."""
    t = orm.incidents
    return (
        await session.execute(
            sa.select(t.c.id, t.c.detected_at)
            .where(t.c.kind == "voltage", t.c.transformer_id == transformer_id)
            .where(t.c.status.in_(("detected", "confirmed")))
            .order_by(t.c.detected_at.desc())
            .limit(1)
        )
    ).first()


async def _last_resolution(session: AsyncSession, transformer_id: str) -> datetime | None:
    t = orm.incidents
    return utc(
        await session.scalar(
            sa.select(sa.func.max(t.c.restored_at)).where(
                t.c.kind == "voltage", t.c.transformer_id == transformer_id
            )
        )
    )


async def _recent_reports(
    session: AsyncSession, transformer_id: str, since: datetime, exclude: Sequence[str]
) -> list[LowVoltageReport]:
    t = customer_reports
    stmt = sa.select(t.c.event_id, t.c.customer_id, t.c.meter_id, t.c.occurred_at).where(
        t.c.transformer_id == transformer_id,
        t.c.kind == "call_low_voltage",
        t.c.occurred_at >= since,
    )
    if exclude:
        stmt = stmt.where(t.c.event_id.not_in(list(exclude)))
    rows = await session.execute(stmt.order_by(t.c.occurred_at))
    return [
        LowVoltageReport(
            r.event_id, r.customer_id, r.meter_id or "", utc(r.occurred_at) or r.occurred_at
        )
        for r in rows
    ]


def reading_of(
    event_id: str, meter_id: str, at: datetime, v_avg: float, interval_s: int
) -> VoltageReading:
    """The domain reading of a stored or incoming voltage signal."""
    return VoltageReading(event_id, meter_id, at, v_avg, interval_s)
