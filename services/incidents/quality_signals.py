"""The incidents service's handler for the signals the correlator does not own wholly:
voltage readings, sags and swells, every ``call_*`` report and surveys.

Registered on ``HandlerContext.extra_signal_handlers`` (see :func:`install` in
:mod:`services.incidents.quality_hooks`); runs inside the batch's transaction and cache
lock, after the correlator applied the batch, so a call is tagged with the incident that
holds the customer at that moment (one created by this very batch included).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from schemas.signals import Signal
from services.common.db import UnitOfWork
from services.incidents import orm
from services.incidents.domain import lifecycle
from services.incidents.domain.model import Incident
from services.incidents.domain.voltage import classify_disturbance_v
from services.incidents.domain.voltage_monitor import LowVoltageReport, VoltageEvent
from services.incidents.incident_writer import save_changed
from services.incidents.report_store import (
    CustomerReportRow,
    outage_incident_at,
    store_customer_report,
)
from services.incidents.state_store import IncidentMeta, load_incidents
from services.incidents.survey_store import SurveyRow, store_surveys
from services.incidents.voltage_store import (
    DisturbanceRow,
    ReadingRow,
    store_disturbance,
    store_readings,
)
from services.incidents.voltage_watch import (
    ACTOR,
    VoltageWatch,
    apply_transitions,
    open_voltage_row,
    reading_of,
)

if TYPE_CHECKING:
    from services.incidents.handlers import HandlerContext


class QualitySignals:
    """``extra_signal_handlers`` hook: store, roll up, feed the voltage monitors."""

    def __init__(self, watch: VoltageWatch, tz: ZoneInfo) -> None:
        self.watch = watch
        self.tz = tz

    async def __call__(
        self, uow: UnitOfWork, signals: Sequence[Signal], ctx: HandlerContext
    ) -> None:
        session = uow.session
        topo = self.watch.topology
        batch_ids = [s.signal_id for s in signals]
        transitions: list[VoltageEvent] = []
        confirm_for: dict[str, datetime] = {}  # transformer → low_voltage report while open
        reporters: dict[str, set[str]] = {}  # transformer → new reporters while open
        batch_readings = list(self._readings(signals))
        readings: dict[str, ReadingRow] = {}
        for row, _ in batch_readings:
            readings.setdefault(row.event_id, row)
        # Stored in one go; the monitors below still see them one by one in batch order.
        new_readings = await store_readings(session, batch_readings, self.tz)
        answers: list[SurveyRow] = []
        for s in signals:
            tx = s.transformer_id
            if tx is not None and tx not in topo.transformers:
                continue  # the topology changed under the signal
            area = topo.area_of_transformer(tx) if tx is not None else ""
            if s.kind == "voltage" and tx is not None and s.meter_id is not None:
                row = readings[s.signal_id]
                if s.signal_id in new_readings:
                    new_readings.discard(s.signal_id)  # a repeat in the batch is a duplicate
                    monitor = await self.watch.monitor(session, tx, s.occurred_at, batch_ids)
                    transitions += monitor.add_reading(
                        reading_of(s.signal_id, s.meter_id, s.occurred_at, row.v_avg,
                                   row.interval_s)
                    )  # fmt: skip
            elif s.kind in ("sag", "swell") and tx is not None and s.meter_id is not None:
                magnitude, duration = float(s.data["magnitude_v"]), float(s.data["duration_ms"])
                nominal = topo.transformers[tx].nominal_v
                category = classify_disturbance_v(magnitude, nominal, duration) or "unclassified"
                await store_disturbance(
                    session,
                    DisturbanceRow(
                        s.signal_id,
                        s.meter_id,
                        tx,
                        s.feeder_id,
                        s.kind,
                        category,
                        magnitude,
                        duration,
                        s.occurred_at,
                    ),  # fmt: skip
                    area,
                    self.tz,
                )
            elif s.kind == "survey" and s.customer_id is not None and "score" in s.data:
                answers.append(SurveyRow(
                    s.signal_id, s.customer_id, _str(s.data.get("incident_id")),
                    int(s.data["score"]), s.occurred_at,
                ))  # fmt: skip
            elif s.kind.startswith("call_") and s.customer_id is not None:
                incident_id = _str(s.data.get("incident_id"))
                if incident_id is None and s.kind == "call_low_voltage" and tx is not None:
                    row_ = await open_voltage_row(session, tx)
                    incident_id = None if row_ is None else str(row_.id)
                if incident_id is None:
                    incident_id = _outage_in_memory(ctx, s.customer_id, s.occurred_at)
                if incident_id is None:
                    incident_id = ctx.cache.corr.s.holder.get(s.customer_id)
                if incident_id is None:
                    incident_id = await outage_incident_at(session, s.customer_id, s.occurred_at)
                report = CustomerReportRow(
                    s.signal_id, s.customer_id, s.meter_id, tx, s.feeder_id, s.kind,
                    _str(s.data.get("channel")), incident_id, s.occurred_at,
                )  # fmt: skip
                new = await store_customer_report(session, report)
                if new and s.kind == "call_low_voltage" and tx is not None and s.meter_id:
                    monitor = await self.watch.monitor(session, tx, s.occurred_at, batch_ids)
                    was_open = monitor.opened_at is not None
                    known = s.customer_id in monitor.reporting_customers
                    found = monitor.add_report(
                        LowVoltageReport(s.signal_id, s.customer_id, s.meter_id, s.occurred_at)
                    )
                    transitions += found
                    if was_open and not found:
                        confirm_for.setdefault(tx, s.occurred_at)
                        if not known:  # acknowledged once per incident, not per call
                            reporters.setdefault(tx, set()).add(s.customer_id)
        # read no incident this batch changed (those are saved after this hook): as inline
        await store_surveys(session, answers)
        incidents, metas = await apply_transitions(session, self.watch, transitions)
        incidents += await _confirm_open(session, confirm_for, reporters, incidents, metas)
        if not incidents:
            return
        await ctx.cache.acquire(session, {i.feeder_id for i in incidents})
        await save_changed(uow, ctx, incidents, metas, ctx.clock.now())

    def _readings(self, signals: Sequence[Signal]) -> Iterator[tuple[ReadingRow, str]]:
        """The batch's voltage readings on known transformers, with their area."""
        topo = self.watch.topology
        for s in signals:
            tx = s.transformer_id
            if s.kind != "voltage" or tx is None or s.meter_id is None:
                continue
            if tx not in topo.transformers:
                continue  # the topology changed under the signal
            d = s.data
            v_avg = float(d["v_avg"])
            row = ReadingRow(
                s.signal_id, s.meter_id, tx, s.feeder_id, s.occurred_at,
                int(d.get("interval_s", 900)), v_avg, _opt(d.get("v_min")),
                _opt(d.get("v_max")), self.watch.in_band(tx, v_avg),
            )  # fmt: skip
            yield row, topo.area_of_transformer(tx)


async def _confirm_open(
    session: AsyncSession,
    transformers: dict[str, datetime],
    reporters: dict[str, set[str]],
    already: list[Incident],
    metas: dict[str, IncidentMeta],
) -> list[Incident]:
    """Confirm detected voltage incidents that a customer's report now backs, and list the
    new reporters in a ``scope_changed`` (``reported``: notify acknowledges them)."""
    out: list[Incident] = []
    for tx, at in sorted(transformers.items()):
        current = next((i for i in already if i.transformer_id == tx), None)
        if current is None:
            row = await open_voltage_row(session, tx)
            if row is None:
                continue
            incs, loaded = await load_incidents(session, orm.incidents.c.id == row.id)
            current = incs[row.id]
            metas.update(loaded)
            out.append(current)
        when = max(at, current.detected_at)
        if current.status == "detected":
            lifecycle.confirm(current, when, ACTOR, "customer reported low voltage")
        new = sorted(reporters.get(tx, ()))
        if new:
            current.record(
                "scope_changed", when, ACTOR, f"low voltage reported by {', '.join(new)}",
                added=new, reported=new,
            )  # fmt: skip
    return out


def _outage_in_memory(ctx: HandlerContext, customer_id: str, at: datetime) -> str | None:
    """The incident whose interruption of the customer covers ``at`` (open ones first, then
    the latest start), among those the correlator holds or touched in this unit of work.

    Judged by event time on the state after the whole batch, so a call is tagged the same
    however the signals were batched — incidents created in this batch are not in the
    database yet, and the holder may already have moved on (restored, nested)."""
    corr = ctx.cache.corr
    best: tuple[tuple[bool, datetime], str] | None = None
    for inc in (*corr.touched_incidents.values(), *corr.s.incidents.values()):
        intr = inc.interruptions.get(customer_id)
        if intr is None or intr.start > at or (intr.end is not None and intr.end < at):
            continue
        key = (intr.end is None, intr.start)
        if best is None or key > best[0]:
            best = (key, inc.id)
    return None if best is None else best[1]


def _opt(value: object) -> float | None:
    return None if value is None else float(str(value))


def _str(value: object) -> str | None:
    return None if value is None else str(value)
