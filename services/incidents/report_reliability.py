"""The reliability report computed with its sums in the database (the fast path).

Gives the same dict as ``reports.reliability.reliability_report`` on the records of
``report_interruptions.load_reliability_inputs`` (a test compares both), but sums per
customer and then per group inside PostgreSQL / SQLite, so a year of three million
customer interruptions never travels to Python. MED thresholds and days use the pure
functions on the daily SAIDI sums.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.common.topology import orm as topo
from services.incidents.report_interruptions import (
    I,
    daily_system_saidi,
    first_interruption_before,
    measures,
    momentary_event_rows,
    overlapping,
)
from services.incidents.report_lanes import Lanes, tune
from services.incidents.report_rollup_sums import BaseSums, rollup_base, rollup_group_sums
from services.incidents.report_rollups import rollup_daily_saidi, whole_hour_zone
from services.incidents.report_sql import (
    Dialect,
    group_key_expr,
    in_local_days,
    local_midnight,
)
from services.incidents.reports.aggregation import check_group_by, ratio
from services.incidents.reports.major_event_days import (
    MedThreshold,
    local_day,
    major_event_days,
    med_threshold,
)
from services.incidents.reports.records import Period, SaidiHistory

_SUMS = ("ci", "cmi", "pci", "pcmi", "mom", "interrupted", "cemi")


@dataclass(frozen=True, slots=True)
class MedContext:
    """System-level Major Event Day inputs shared by every group."""

    served_total: int
    daily: dict[date, float]
    threshold: MedThreshold
    days: list[date]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


async def saidi_history(
    session: AsyncSession,
    period: Period,
    served: int,
    tz: tzinfo,
    years: int,
    *,
    rollups: bool = False,
) -> SaidiHistory:
    """Daily system SAIDI of up to ``years`` years before the period, summed in SQL
    (from the hour roll-up when ``rollups``)."""
    first = await first_interruption_before(session, period.start)
    if first is None:
        return SaidiHistory()
    since = max(first, local_midnight(_years_before(local_day(period.start, tz), years), tz))
    daily_fn = rollup_daily_saidi if rollups else daily_system_saidi
    daily = await daily_fn(session, since, period.start, period.start, served, tz)
    return SaidiHistory(daily_saidi=daily, first_day=local_day(first, tz))


async def med_context(
    session: AsyncSession,
    period: Period,
    tz: tzinfo,
    *,
    served: int,
    years: int,
    beta_multiplier: float,
    rollups: bool = False,
) -> MedContext:
    """The period's daily SAIDI, the MED threshold and the MEDs for ``served`` customers."""
    history = await saidi_history(session, period, served, tz, years, rollups=rollups)
    daily_fn = rollup_daily_saidi if rollups else daily_system_saidi
    daily = await daily_fn(session, period.start, period.end, period.end, served, tz)
    threshold = med_threshold(
        history, local_day(period.start, tz), years=years, beta_multiplier=beta_multiplier
    )
    return MedContext(served, daily, threshold, major_event_days(daily, threshold))


def _midnight_between(start: datetime, end: datetime, tz: tzinfo) -> datetime:
    """A local midnight near the middle of [start, end) (``end`` when none lies inside):
    splitting a day history there keeps every local day in one half."""
    middle = local_midnight(local_day(start + (end - start) / 2, tz), tz)
    return middle if start < middle < end else end


async def _rollup_med_round(
    lanes: Lanes,
    period: Period,
    tz: tzinfo,
    group_by: str,
    *,
    served: int,
    years: int,
    beta_multiplier: float,
) -> tuple[MedContext, BaseSums]:
    """``med_context`` from the roll-ups, beside the roll-up sums that need no MED: the
    daily SAIDI of the history and of the period are each read in two halves, one per
    connection, when there are two (split at local midnights, so no day is in both)."""
    first = await first_interruption_before(lanes.session, period.start)
    start = local_day(period.start, tz)
    since = period.start if first is None else max(
        first, local_midnight(_years_before(start, years), tz)
    )
    ps, pe = period.start, period.end
    # Halves only when they run side by side: on one connection they are one more scan.
    middle = _midnight_between(since, ps, tz) if lanes.parallel else ps
    halfway = _midnight_between(ps, pe, tz) if lanes.parallel else pe

    async def main(s: AsyncSession) -> tuple[dict[date, float], dict[date, float]]:
        history = await rollup_daily_saidi(s, since, middle, ps, served, tz)
        return history, await rollup_daily_saidi(s, ps, halfway, pe, served, tz)

    async def side(s: AsyncSession) -> tuple[dict[date, float], dict[date, float], BaseSums]:
        history = await rollup_daily_saidi(s, middle, ps, ps, served, tz)
        daily = await rollup_daily_saidi(s, halfway, pe, pe, served, tz)
        return history, daily, await rollup_base(s, period, group_by)

    (early, daily_early), (late, daily_late, base) = await lanes.both(main, side)
    daily = {**daily_early, **daily_late}
    history = (
        SaidiHistory()
        if first is None
        else SaidiHistory(daily_saidi={**early, **late}, first_day=local_day(first, tz))
    )
    threshold = med_threshold(history, start, years=years, beta_multiplier=beta_multiplier)
    return MedContext(served, daily, threshold, major_event_days(daily, threshold)), base


def _n(flag: ColumnElement[bool]) -> ColumnElement[Any]:
    return sa.case((flag, 1), else_=0)


def _per_customer(
    dialect: Dialect, period: Period, group_by: str, med: ColumnElement[bool]
) -> sa.Subquery:
    """Per group and customer, in one pass over the period's rows (groups are stored on
    each row): sustained counts and minutes, planned ones and momentaries, each also
    without the interruptions that start on a MED (suffix ``_x``)."""
    m = measures(dialect, period)
    unplanned = sa.not_(I.c.planned)
    sustained = sa.and_(m.sustained, unplanned)
    planned = sa.and_(m.sustained, I.c.planned)
    momentary = sa.and_(sa.not_(m.sustained), m.inside, unplanned, m.momentary)
    off_med = sa.not_(med)
    key = group_key_expr(group_by, I).label("key")
    columns: list[ColumnElement[Any]] = []
    for suffix, keep in (("", sa.true()), ("_x", off_med)):
        columns += [
            sa.func.sum(_n(sa.and_(sustained, m.inside, keep))).label("ci" + suffix),
            sa.func.sum(sa.case((sa.and_(sustained, keep), m.clipped), else_=0.0)).label(
                "cmi" + suffix
            ),
            sa.func.sum(_n(sa.and_(momentary, keep))).label("mom" + suffix),
        ]
    return (
        sa.select(
            key,
            *columns,
            sa.func.sum(_n(sa.and_(planned, m.inside))).label("pci"),
            sa.func.sum(sa.case((planned, m.clipped), else_=0.0)).label("pcmi"),
        )
        .where(overlapping(period))
        .group_by(key, I.c.customer_id)
        .subquery("per_customer")
    )


async def _group_sums(
    session: AsyncSession, period: Period, group_by: str, cemi_n: int, med: ColumnElement[bool]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per group: the sums with every interruption, and without those starting on MEDs."""
    dialect = Dialect.of(session)
    pc = _per_customer(dialect, period, group_by, med)
    columns: list[ColumnElement[Any]] = [sa.func.sum(pc.c.pci).label("pci"),
                                         sa.func.sum(pc.c.pcmi).label("pcmi")]  # fmt: skip
    for sx in ("", "_x"):
        columns += [
            sa.func.sum(pc.c["ci" + sx]).label("ci" + sx),
            sa.func.sum(pc.c["cmi" + sx]).label("cmi" + sx),
            sa.func.sum(pc.c["mom" + sx]).label("mom" + sx),
            sa.func.sum(_n(pc.c["ci" + sx] > 0)).label("interrupted" + sx),
            sa.func.sum(_n(pc.c["ci" + sx] > cemi_n)).label("cemi" + sx),
        ]
    rows = await session.execute(
        sa.select(pc.c.key, *columns).select_from(pc).group_by(pc.c.key)
    )
    base: dict[str, dict[str, float]] = {}
    excl: dict[str, dict[str, float]] = {}
    for r in rows:
        values = r._mapping
        base[r.key] = {n: values[n] or 0 for n in _SUMS}
        excl[r.key] = {n: values.get(n + "_x", values.get(n)) or 0 for n in _SUMS}
    return base, excl


async def _event_counts(
    session: AsyncSession, period: Period, group_by: str, med_days: list[date], tz: tzinfo
) -> dict[str, tuple[int, int]]:
    """Momentary events per group: (all, outside MEDs)."""
    ev = momentary_event_rows(Dialect.of(session), period)
    key = group_key_expr(group_by, ev).label("key")
    on_med = in_local_days(ev.c.occurred_at, med_days, tz)
    rows = await session.execute(
        sa.select(key, sa.func.count().label("n"), sa.func.sum(_n(sa.not_(on_med))).label("e"))
        .select_from(ev)
        .group_by(key)
    )
    return {r.key: (int(r.n), int(r.e or 0)) for r in rows}


# (database, topology version, loaded_at, group_by) → customers served per group. A loaded
# topology never changes without a new version, so counting 1,000,000 customers once per
# version is enough. Version 0 (rows written without a load, as in tests) is not cached.
_SERVED_CACHE: dict[tuple[str, int, str, str], dict[str, tuple[int, set[str]]]] = {}
_SERVED_CACHE_MAX = 64


async def _served(session: AsyncSession, group_by: str) -> dict[str, tuple[int, set[str]]]:
    """Customers served per group and the areas each spans, cached per topology version."""
    meta = (
        await session.execute(sa.select(topo.meta.c.version, topo.meta.c.loaded_at))
    ).first()
    if meta is None or not meta.version:
        return await _count_served(session, group_by)
    bind = session.get_bind()
    engine = bind if isinstance(bind, sa.Engine) else bind.engine
    url = engine.url.render_as_string(hide_password=True)
    key = (url, int(meta.version), str(meta.loaded_at), group_by)
    cached = _SERVED_CACHE.get(key)
    if cached is None:
        cached = await _count_served(session, group_by)
        if len(_SERVED_CACHE) >= _SERVED_CACHE_MAX:
            _SERVED_CACHE.clear()
        _SERVED_CACHE[key] = cached
    return {k: (n, set(areas)) for k, (n, areas) in cached.items()}


async def _count_served(
    session: AsyncSession, group_by: str
) -> dict[str, tuple[int, set[str]]]:
    """Customers served per group, and the areas each group spans.

    Counted per transformer first: a 1,000,000-customer join through transformers,
    devices and feeders would cost several times the 100,000-row one.
    """
    c, t, d, f = topo.customers, topo.transformers, topo.devices, topo.feeders
    per_transformer = (
        sa.select(c.c.transformer, sa.func.count().label("n"))
        .group_by(c.c.transformer)
        .subquery("per_transformer")
    )
    sg = (
        sa.select(
            f.c.id.label("feeder_id"),
            f.c.substation,
            sa.func.coalesce(t.c.area, f.c.area).label("area"),
            per_transformer.c.n,
        )
        .select_from(
            per_transformer.join(t, t.c.id == per_transformer.c.transformer)
            .join(d, d.c.id == t.c.device)
            .join(f, f.c.id == d.c.feeder)
        )
        .subquery("served_groups")
    )
    key = group_key_expr(group_by, sg).label("key")
    rows = await session.execute(
        sa.select(key, sg.c.area, sa.func.sum(sg.c.n).label("n")).group_by(key, sg.c.area)
    )
    out: dict[str, tuple[int, set[str]]] = {}
    for r in rows:
        n, areas = out.get(r.key, (0, set()))
        out[r.key] = (n + int(r.n), areas | {r.area})
    return out


def _index_set(served: int, s: Mapping[str, float], events: int, period: Period) -> dict[str, Any]:
    # The formulas of reports.reliability._index_set, applied to database sums.
    ci, cmi = int(s.get("ci", 0)), float(s.get("cmi", 0.0))
    pci, pcmi = int(s.get("pci", 0)), float(s.get("pcmi", 0.0))
    interrupted = int(s.get("interrupted", 0))
    aihc1 = ratio((cmi + pcmi) / 60.0, served)
    return {
        "customer_interruptions": ci,
        "customer_minutes": cmi,
        "customers_interrupted": interrupted,
        "saifi": ratio(ci, served),
        "saidi": ratio(cmi, served),
        "caidi": ratio(cmi, ci),
        "caifi": ratio(ci, interrupted),
        "asai": None if served == 0 else 1.0 - cmi / (served * period.minutes),
        "maifi": ratio(int(s.get("mom", 0)), served),
        "maifi_e": ratio(events, served),
        "cemi": ratio(int(s.get("cemi", 0)), served),
        "rs1": None if aihc1 is None else (1.0 - aihc1 / (period.minutes / 60.0)) * 100.0,
        "aihc1": aihc1,
        "aitc1": ratio(ci + pci, served),
        "planned": {
            "customer_interruptions": pci,
            "customer_minutes": pcmi,
            "saifi": ratio(pci, served),
            "saidi": ratio(pcmi, served),
        },
    }


def _period_days(period: Period, tz: tzinfo) -> list[date]:
    first = local_day(period.start, tz)
    last = local_day(period.end - timedelta(microseconds=1), tz)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def reliability_report_sql(
    session: AsyncSession,
    period: Period,
    *,
    group_by: str,
    tz: tzinfo,
    cemi_n: int,
    rs1_targets: Mapping[str, float],
    med_beta_multiplier: float,
    med_history_years: int,
    rollups: bool | None = None,
) -> dict[str, Any]:
    """The reliability report of DESIGN section 11, sums computed in the database.

    With ``rollups`` (default: whenever ``tz`` keeps whole-hour offsets over the period and
    its MED history) closed interruptions are read from the roll-up tables
    (``report_rollup_sums``); otherwise every overlapping row is summed. Both give the same
    report.
    """
    check_group_by(group_by)
    if rollups is None:
        since = period.start - timedelta(days=366 * med_history_years + 2)
        rollups = whole_hour_zone(tz, since, period.end)
    # Decided before this report's own transaction begins.
    async with Lanes(session) as lanes:
        await tune(session)
        served = await _served(session, group_by)

        total_served = sum(n for n, _areas in served.values())
        med_set: frozenset[date]
        if rollups:
            # The MED threshold beside the whole-month sums, which need no MED.
            ctx, round_one = await _rollup_med_round(
                lanes, period, tz, group_by, served=total_served, years=med_history_years,
                beta_multiplier=med_beta_multiplier,
            )  # fmt: skip
            med_set = frozenset(ctx.days)
            base, excl, events = await rollup_group_sums(
                lanes, round_one, period, group_by, cemi_n, ctx.days, tz
            )
        else:
            ctx = await med_context(
                session, period, tz, served=total_served, years=med_history_years,
                beta_multiplier=med_beta_multiplier,
            )  # fmt: skip
            med_set = frozenset(ctx.days)
            on_med = in_local_days(I.c.start, ctx.days, tz)
            base, excl = await _group_sums(session, period, group_by, cemi_n, on_med)
            events = await _event_counts(session, period, group_by, ctx.days, tz)
    med_iso = [d.isoformat() for d in ctx.days]
    groups_out: list[dict[str, Any]] = []
    for key in sorted(set(base) | set(events) | set(served)):
        n_served, areas = served.get(key, (0, set()))
        all_events, events_excl = events.get(key, (0, 0))
        b = _index_set(n_served, base.get(key, {}), all_events, period)
        e = _index_set(n_served, excl.get(key, {}), events_excl, period)
        if group_by == "area":
            areas = {key}
        target = rs1_targets.get(next(iter(areas))) if len(areas) == 1 else None
        rs1 = b["rs1"]
        groups_out.append(
            {
                "key": key,
                "customers_served": n_served,
                **b,
                "cemi_n": cemi_n,
                "target_rs1": target,
                "rs1_met": None if target is None or rs1 is None else rs1 >= target,
                "med_days": med_iso,
                "med_threshold": ctx.threshold.threshold_min,
                "med_history_days": ctx.threshold.history_days,
                "excluding_med": e,
            }
        )
    return {
        "period": period.as_json(),
        "group_by": group_by,
        "med": {**ctx.threshold.as_json(), "days": med_iso},
        "daily_saidi": [
            {"date": d.isoformat(), "saidi": ctx.daily.get(d, 0.0), "med": d in med_set}
            for d in _period_days(period, tz)
        ],
        "groups": groups_out,
    }
