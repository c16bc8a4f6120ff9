"""Satisfaction impact of incidents (DESIGN section 9), computed from stored facts.

Per customer of an incident (the customers whose interruption it owns, so a nested
outage's customers count once, in the nested incident): d = interruption minutes (open ones
up to ``now``), breach = minutes past the area's restore-overall commitment, notified within
target = a first message (``first_notices``) within ``first_notice`` of the later of
detection and the customer's own start (a customer back before that deadline counts as
notified), ETR error = |end − ETR in force at the end| (0 without an ETR), ETR slips = the
ETR moving later before the customer's end, prior_12m = the customer's sustained
interruptions in other incidents that started in the 365 days before detection, calls =
reports the customer made about it (``customer_reports``).

Stored in ``customer_impacts`` (with the inputs, for calibration) and the incident's
``impact`` column; ``final`` once the incident is closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.policy import Policy
from services.common.topology.model import Area, Topology
from services.incidents import orm
from services.incidents.bulk_sql import among, chunks, insert_rows
from services.incidents.domain import impact, policy_rules, sla_clock
from services.incidents.domain.model import EtrChange, Incident
from services.incidents.quality_orm import customer_impacts
from services.incidents.report_store import calls_per_customer, first_notice_times
from services.incidents.state_store import load_incidents, utc

PRIOR_WINDOW = timedelta(days=365)
MOMENTARY = timedelta(minutes=5)
IMPACT_KINDS = frozenset({"outage", "planned"})
FINAL_STATUSES = frozenset({"closed", "completed"})
RECORD_STATUSES = frozenset({"restored", "closed", "completed"})
INPUT_FIELDS = tuple(f.name for f in fields(impact.CustomerImpactInput))
IMPACT_COLUMNS = ("incident_id", "customer_id", "impact", "components", "inputs",
                  "interruption_min", "final", "computed_at")  # the order of record_impact's rows


async def etr_changes(session: AsyncSession, inc: Incident) -> list[EtrChange]:
    """The incident's ETR history: stored entries plus any not yet saved."""
    t = orm.etr_history
    rows = await session.execute(sa.select(t).where(t.c.incident_id == inc.id).order_by(t.c.n))
    stored = [EtrChange(utc(r.at) or r.at, utc(r.etr) or r.etr, r.actor, r.reason) for r in rows]
    return stored + list(inc.etr_history)


def _etr_terms(history: Sequence[EtrChange], end: datetime | None) -> tuple[float, int]:
    """(|end − ETR in force at end| in minutes, ETR slips before end); ``history`` in time
    order."""
    in_force: datetime | None = None
    slips = 0
    for change in history:
        if end is not None and change.at > end:
            break
        if in_force is not None and change.etr > in_force:
            slips += 1
        in_force = change.etr
    if end is None or in_force is None:
        return 0.0, slips
    return abs((end - in_force).total_seconds()) / 60.0, slips


async def prior_interruptions(
    session: AsyncSession, inc: Incident, customers: Sequence[str]
) -> dict[str, int]:
    """Sustained interruptions of each customer in other incidents in the prior 365 days."""
    t = orm.interruptions
    out: dict[str, int] = {}
    since = inc.detected_at - PRIOR_WINDOW
    for among_customers in among(session, t.c.customer_id, sorted(customers)):
        rows = await session.execute(
            sa.select(t.c.customer_id, t.c.start, t.c.end).where(
                among_customers,
                t.c.incident_id != inc.id,
                ~t.c.momentary,
                t.c.start >= since,
                t.c.start < inc.detected_at,
            )
        )
        for customer_id, start, end in rows:
            s, e = utc(start), utc(end)
            if s is not None and e is not None and e - s <= MOMENTARY:
                continue
            out[customer_id] = out.get(customer_id, 0) + 1
    return out


async def impact_inputs(
    session: AsyncSession, inc: Incident, topology: Topology, policy: Policy, now: datetime
) -> list[impact.CustomerImpactInput]:
    """The formula inputs of every customer whose interruption the incident owns."""
    targets = policy_rules.sla_targets(policy, cast(Area, inc.area))
    intrs = {c: i for c, i in inc.interruptions.items() if c in topology.customers}
    notices = await first_notice_times(session, inc.id)
    history = sorted(await etr_changes(session, inc), key=lambda c: c.at)
    etr_terms: dict[datetime | None, tuple[float, int]] = {}  # customers restored together
    prior = await prior_interruptions(session, inc, list(intrs))
    calls = await calls_per_customer(
        session, inc.id, {c: (i.start, i.end) for c, i in intrs.items()}
    )
    out: list[impact.CustomerImpactInput] = []
    for c, intr in sorted(intrs.items()):
        cust = topology.customers[c]
        minutes = intr.minutes(now)
        notice_due = max(inc.detected_at, intr.start) + targets.first_notice
        sent = notices.get(c)
        in_time = (sent is not None and sent <= notice_due) or (
            intr.end is not None and intr.end <= notice_due
        )
        terms = etr_terms.get(intr.end)
        if terms is None:
            terms = etr_terms[intr.end] = _etr_terms(history, intr.end)
        etr_error, slips = terms
        out.append(
            impact.CustomerImpactInput(
                customer_id=c,
                customer_class=cust.class_,
                critical=cust.critical,
                interruption_min=minutes,
                breach_min=sla_clock.restore_breach_minutes(minutes, targets),
                notified_in_time=in_time,
                etr_error_min=etr_error,
                etr_slips=slips,
                prior_12m=prior.get(c, 0),
                calls=calls.get(c, 0),
            )  # fmt: skip
        )
    return out


def summarise(
    impacts: Sequence[impact.CustomerImpact], final: bool, now: datetime
) -> dict[str, Any]:
    """The incident's ``impact`` JSON: total, mean, customers, customer-minutes, shares."""
    agg = impact.incident_impact(impacts)
    return {
        "total": agg.total, "mean": agg.mean, "customers": agg.customers,
        "customer_minutes": agg.customer_minutes, "component_shares": agg.component_shares,
        "final": final, "computed_at": now.isoformat(),
    }  # fmt: skip


async def compute(
    session: AsyncSession, inc: Incident, topology: Topology, policy: Policy, now: datetime
) -> tuple[list[impact.CustomerImpactInput], list[impact.CustomerImpact]]:
    """Inputs and impacts of the incident's customers at ``now``."""
    weights = policy_rules.impact_weights(policy)
    inputs = await impact_inputs(session, inc, topology, policy, now)
    return inputs, [scored[0] for scored in _scored(inputs, weights)]


# customer_impact is a pure function of (weights, input): a restored incident is recorded
# again whenever anything of it changes (a late power_on, each batch of first notices), and
# nearly all of its customers' inputs are the same each time. Bounded; cleared when full.
_MEMO: dict[tuple[Any, impact.CustomerImpactInput], tuple[impact.CustomerImpact, dict[str, Any]]]
_MEMO = {}
MEMO_LIMIT = 300_000


def _scored(
    inputs: Sequence[impact.CustomerImpactInput], weights: impact.ImpactWeights
) -> list[tuple[impact.CustomerImpact, dict[str, Any]]]:
    """Each input's impact and its stored ``inputs`` JSON (shared objects; never mutated)."""
    vector = weights.vector()
    key = (vector, weights.cap, weights.critical_multiplier,
           tuple(sorted(weights.class_weights.items())))  # fmt: skip
    if len(_MEMO) > MEMO_LIMIT:
        _MEMO.clear()
    out = []
    for inp in inputs:
        hit = _MEMO.get((key, inp))
        if hit is None:
            fields_ = {name: getattr(inp, name) for name in INPUT_FIELDS}  # asdict is slow
            hit = _MEMO[(key, inp)] = (impact.customer_impact(inp, weights, vector), fields_)
        out.append(hit)
    return out


async def record_impact(
    session: AsyncSession, inc: Incident, topology: Topology, policy: Policy, now: datetime
) -> dict[str, Any]:
    """Compute and store the incident's impact (rows per customer and the ``impact``
    column); ``final`` when the incident is closed."""
    final = inc.status in FINAL_STATUSES
    inputs = await impact_inputs(session, inc, topology, policy, now)
    scored = _scored(inputs, policy_rules.impact_weights(policy))
    impacts = [ci for ci, _ in scored]
    rows = [
        {
            "incident_id": inc.id,
            "customer_id": ci.customer_id,
            "impact": ci.impact,
            "components": ci.components,
            "inputs": stored_inputs,
            "interruption_min": ci.interruption_min,
            "final": final,
            "computed_at": now,
        }  # fmt: skip
        for ci, stored_inputs in scored
    ]
    t = customer_impacts
    await session.execute(sa.delete(t).where(t.c.incident_id == inc.id))
    await insert_rows(session, t, IMPACT_COLUMNS, rows)
    summary = summarise(impacts, final, now)
    await session.execute(
        sa.update(orm.incidents).where(orm.incidents.c.id == inc.id).values(impact=summary)
    )
    return summary


async def live_impact(
    session: AsyncSession,
    incident_id: str,
    now: datetime,
    *,
    topology: Topology,
    policy: Policy,
) -> dict[str, Any] | None:
    """The incident's impact at ``now`` with per-customer components, without storing it
    (for the detail view); None for an unknown incident."""
    incs, _ = await load_incidents(session, orm.incidents.c.id == incident_id)
    inc = incs.get(incident_id)
    if inc is None:
        return None
    _, impacts = await compute(session, inc, topology, policy, now)
    out = summarise(impacts, inc.status in FINAL_STATUSES, now)
    out["top_customers"] = [
        {"customer_id": i.customer_id, "impact": i.impact, "components": i.components}
        for i in sorted(impacts, key=lambda i: -i.impact)[:20]
    ]
    return out


class ImpactRecorder:
    """``incident_changed_hooks`` entry and timer: record impact on restoration and at close.

    An incident is recorded at once when it reaches a recorded status (restored, closed,
    completed) or changes status among them, so the restoration and final values are exact.
    A restored incident keeps changing in a storm (late power_on, every batch of first
    notices) and each record rewrites all its customers' rows, which made a large incident
    cost O(customers) per batch; later changes within ``refresh`` of its last record are
    folded into one record at the first timer run ``refresh`` after it (:meth:`run_due`). The
    pending refreshes live in memory: after a restart the next change or the close records
    the incident again.
    """

    def __init__(
        self, topology: Any, policy: Policy, refresh: timedelta = timedelta(seconds=300)
    ) -> None:
        self._topology = topology  # a callable returning the current topology
        self.policy = policy
        self.refresh = refresh
        self._last: dict[str, tuple[str, datetime]] = {}  # id → (status, recorded at)
        self._due: dict[str, datetime] = {}  # id → pending refresh
        self.records = 0

    async def __call__(self, uow: Any, incidents: Sequence[Incident], ctx: Any) -> None:
        now = ctx.clock.now()
        for inc in incidents:
            if inc.kind not in IMPACT_KINDS or inc.status not in RECORD_STATUSES:
                continue
            last = self._last.get(inc.id)
            if last is not None and last[0] == inc.status and now < last[1] + self.refresh:
                self._fold(inc.id, now)
                continue
            await self._record(uow.session, inc, now)

    def _fold(self, incident_id: str, now: datetime) -> None:
        """Owe the incident one re-record, ``refresh`` after its last record here (else
        after ``now``); a refresh already owed stands."""
        last = self._last.get(incident_id)
        due = now + self.refresh if last is None else max(now, last[1] + self.refresh)
        self._due.setdefault(incident_id, due)

    async def _record(self, session: AsyncSession, inc: Incident, now: datetime) -> None:
        await record_impact(session, inc, self._topology(), self.policy, now)
        self.records += 1
        self._due.pop(inc.id, None)
        if inc.status in FINAL_STATUSES:
            self._last.pop(inc.id, None)  # a closed incident rarely changes again
        else:
            self._last[inc.id] = (inc.status, now)

    async def owe(self, session: AsyncSession, incident_ids: Sequence[str], now: datetime) -> None:
        """Some customers' inputs of these incidents changed while the incidents did not (a
        later customer's first notice): re-record the restored or closed ones among them,
        folded like any later change."""
        t = orm.incidents
        for part in chunks(sorted(incident_ids)):
            rows = await session.execute(
                sa.select(t.c.id).where(t.c.id.in_(part), t.c.kind.in_(IMPACT_KINDS),
                                        t.c.status.in_(RECORD_STATUSES))  # fmt: skip
            )
            for (iid,) in rows:
                self._fold(iid, now)

    async def run_due(self, uow: Any, now: datetime, ctx: Any) -> None:
        """``timer_hooks`` entry: record the incidents whose refresh is due at ``now``."""
        from services.incidents.sla_scheduler import held_or_loaded

        due = sorted(i for i, at in self._due.items() if at <= now)
        if not due:
            return
        incidents, _ = await held_or_loaded(uow.session, due, ctx)
        for inc in incidents:
            if inc.kind in IMPACT_KINDS and inc.status in RECORD_STATUSES:
                await self._record(uow.session, inc, now)
        for i in due:  # unknown, or no longer recorded (reopened): nothing owed
            self._due.pop(i, None)

    def next_wake_at(self) -> datetime | None:
        """The earliest pending refresh."""
        return min(self._due.values(), default=None)
