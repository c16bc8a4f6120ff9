"""Per-group reliability sums from the roll-ups (the fast path of ``report_reliability``).

Every interruption that overlaps the period falls in exactly one class:
- closed and starting in the period: whole months of ``report_months`` plus or minus the raw
  rows between each period bound and its nearest month start (``split_months``); the ones
  that end after the period lose their minutes past the end (raw rows found through
  ``report_hours.max_end``); for the without-MED sums the closed rows starting on a MED are
  taken away (raw rows of those days);
- open, or starting before the period and still running at its start: raw rows measured
  exactly as ``report_reliability._per_customer`` measures them.
Per customer (customers interrupted, CEMI_n) the same split runs on
``report_customer_quarters`` (whole quarters) and ``report_customer_months`` (the rest).
The result equals ``report_reliability._group_sums``. MAIFIe events are the momentary rows
less those chained to an earlier one (``report_momentary_chained``), which equals
``report_interruptions.momentary_event_rows``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.incidents.report_interruptions import I, measures
from services.incidents.report_rollups import (
    US_PER_MIN,
    first_hour_ending_after,
    floor_hour,
    in_ranges,
    report_customer_months,
    report_customer_quarters,
    report_momentary_chained,
    report_months,
    rollup_key,
    split_months,
    split_quarters,
)
from services.incidents.report_sql import (
    Dialect,
    group_key_expr,
    in_local_days,
    local_midnight,
    ts,
    utc,
)
from services.incidents.reports.records import Period

SUMS = ("ci", "cmi", "pci", "pcmi", "mom", "interrupted", "cemi")
_COLUMNS = ("ci", "cmi", "pci", "pcmi", "mom", "ci_x", "cmi_x", "mom_x", "rows")
_EPOCH = datetime.min.replace(tzinfo=UTC)


def _n(flag: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return sa.case((flag, value), else_=0)


def _med_ranges(
    days: list[date], tz: tzinfo, period: Period | None = None
) -> list[tuple[datetime, datetime]]:
    """The MED days as UTC start ranges (cut to ``period`` if given). Whole days decide
    whether a row starts on a MED, even one starting before the period on its first day."""
    out = []
    for d in sorted(set(days)):
        lo, hi = local_midnight(d, tz), local_midnight(d + timedelta(days=1), tz)
        if period is not None:
            lo, hi = max(lo, utc(period.start)), min(hi, utc(period.end))
        if lo < hi:
            out.append((lo, hi))
    return out


def _select(key: ColumnElement[Any], **values: ColumnElement[Any]) -> sa.Select[Any]:
    cols = [values.get(c, sa.literal(0)).label(c) for c in _COLUMNS]
    return sa.select(key.label("key"), *cols)


async def _raw_pieces(
    session: AsyncSession,
    period: Period,
    group_by: str,
    med: list[tuple[datetime, datetime]],
    med_inside: list[tuple[datetime, datetime]],
) -> list[sa.Select[Any]]:
    dialect = Dialect.of(session)
    m = measures(dialect, period)
    unplanned, planned = sa.not_(I.c.planned), I.c.planned
    sus, psus = sa.and_(m.sustained, unplanned), sa.and_(m.sustained, planned)
    mom = sa.and_(sa.not_(m.sustained), unplanned)  # closed rows: momentary = not sustained
    key = group_key_expr(group_by, I)
    ps, pe = period.start, period.end
    closed = I.c.end.is_not(None)
    split = split_months(ps, pe)
    on_med = in_ranges(I.c.start, med)
    off = sa.not_(on_med)
    pieces: list[sa.Select[Any]] = []
    # Closed rows between each period bound and its nearest month start, signed.
    if split.plus or split.minus:
        sign = sa.case((in_ranges(I.c.start, split.plus), 1), else_=-1)
        full = {
            "ci": sa.func.sum(_n(sus, sign)), "cmi": sa.func.sum(_n(sus, sign * m.duration)),
            "pci": sa.func.sum(_n(psus, sign)), "pcmi": sa.func.sum(_n(psus, sign * m.duration)),
            "mom": sa.func.sum(_n(mom, sign)), "rows": sa.func.sum(sign),
        }  # fmt: skip
        both = {**full, "ci_x": full["ci"], "cmi_x": full["cmi"], "mom_x": full["mom"]}
        strips = in_ranges(I.c.start, split.plus + split.minus)
        pieces.append(_select(key, **both).where(closed, strips).group_by(key))
    # Closed rows starting in the period and ending after it: their minutes past the end.
    lo = await first_hour_ending_after(session, floor_hour(ps), pe, pe, inclusive=False)
    if lo is not None:
        past = m.duration - m.clipped
        pieces.append(
            _select(
                key,
                cmi=sa.func.sum(_n(sus, -past)), pcmi=sa.func.sum(_n(psus, -past)),
                cmi_x=sa.func.sum(_n(sa.and_(sus, off), -past)),
            )  # fmt: skip
            .where(closed, I.c.start >= ts(max(lo, utc(ps))), I.c.start < ts(pe))
            .where(I.c.end > ts(pe))
            .group_by(key)
        )
    # Open rows and rows running into the period from before it, measured exactly.
    early = await first_hour_ending_after(session, _EPOCH, ps, ps, inclusive=True)
    live = sa.and_(I.c.end.is_(None), I.c.start < ts(pe))
    if early is not None:
        live = sa.or_(live, sa.and_(closed, I.c.start >= ts(early), I.c.start < ts(ps),
                                    I.c.end >= ts(ps)))  # fmt: skip
    inside_sus = sa.and_(sus, m.inside)
    mom_live = sa.and_(sa.not_(m.sustained), m.inside, unplanned, m.momentary)
    clip_sus, clip_psus = _n(sus, m.clipped), _n(psus, m.clipped)
    pieces.append(
        _select(
            key,
            ci=sa.func.sum(_n(inside_sus)), cmi=sa.func.sum(clip_sus),
            pci=sa.func.sum(_n(sa.and_(psus, m.inside))), pcmi=sa.func.sum(clip_psus),
            mom=sa.func.sum(_n(mom_live)),
            ci_x=sa.func.sum(_n(sa.and_(inside_sus, off))),
            cmi_x=sa.func.sum(_n(sa.and_(sus, off), m.clipped)),
            mom_x=sa.func.sum(_n(sa.and_(mom_live, off))), rows=sa.func.count(),
        )  # fmt: skip
        .where(live)
        .group_by(key)
    )
    # Closed rows starting on a MED (in the period): out of the without-MED sums.
    if med_inside:
        pieces.append(
            _select(
                key,
                ci_x=sa.func.sum(_n(sus, -1)), cmi_x=sa.func.sum(_n(sus, -m.duration)),
                mom_x=sa.func.sum(_n(mom, -1)),
            )  # fmt: skip
            .where(closed, in_ranges(I.c.start, med_inside))
            .group_by(key)
        )
    return pieces


def _month_piece(period: Period, group_by: str) -> sa.Select[Any] | None:
    split = split_months(period.start, period.end)
    if split.months is None:
        return None
    t = report_months
    key = rollup_key(group_by, t)
    ci, cmi = sa.func.sum(t.c.sustained_n), sa.func.sum(t.c.sustained_us) / US_PER_MIN
    mom = sa.func.sum(t.c.momentary_n)
    return (
        _select(
            key, ci=ci, cmi=cmi, pci=sa.func.sum(t.c.planned_n),
            pcmi=sa.func.sum(t.c.planned_us) / US_PER_MIN, mom=mom,
            ci_x=ci, cmi_x=cmi, mom_x=mom, rows=sa.func.sum(t.c.rows_n),
        )  # fmt: skip
        .where(t.c.month >= ts(split.months[0]), t.c.month < ts(split.months[1]))
        .group_by(key)
    )


def _customer_counts(
    dialect: Dialect, period: Period, group_by: str, med: list[tuple[datetime, datetime]]
) -> sa.Subquery:
    """Per group and customer: unplanned sustained interruptions starting in the period
    (n) and those not starting on a MED (nx)."""
    m = measures(dialect, period)
    sus = sa.and_(m.sustained, sa.not_(I.c.planned))
    key = group_key_expr(group_by, I).label("key")
    split = split_months(period.start, period.end)
    on_med = in_ranges(I.c.start, med)
    parts: list[sa.Select[Any]] = []
    if split.months is not None:
        quarters, months = split_quarters(*split.months)
        for t, column, ranges in (
            (report_customer_quarters, "quarter", [quarters] if quarters else []),
            (report_customer_months, "month", months),
        ):
            if ranges:
                parts.append(
                    sa.select(rollup_key(group_by, t).label("key"), t.c.customer_id,
                              t.c.sustained_n.label("n"), t.c.sustained_n.label("nx"))
                    .where(in_ranges(t.c[column], ranges))
                )  # fmt: skip
    closed = I.c.end.is_not(None)
    if split.plus or split.minus:
        sign = sa.case((in_ranges(I.c.start, split.plus), 1), else_=-1)
        parts.append(
            sa.select(key, I.c.customer_id, sign.label("n"), sign.label("nx"))
            .where(closed, sus, in_ranges(I.c.start, split.plus + split.minus))
        )
    parts.append(
        sa.select(key, I.c.customer_id, sa.literal(1).label("n"),
                  _n(sa.not_(on_med)).label("nx"))
        .where(I.c.end.is_(None), I.c.start >= ts(period.start), I.c.start < ts(period.end))
        .where(sus)
    )  # fmt: skip
    if med:
        parts.append(
            sa.select(key, I.c.customer_id, sa.literal(0).label("n"), sa.literal(-1).label("nx"))
            .where(closed, sus, on_med)
        )
    u = sa.union_all(*parts).subquery("counted")
    return (
        sa.select(u.c.key, sa.func.sum(u.c.n).label("n"), sa.func.sum(u.c.nx).label("nx"))
        .group_by(u.c.key, u.c.customer_id)
        .subquery("per_customer")
    )


async def _chained(
    session: AsyncSession, period: Period, group_by: str, med: list[tuple[datetime, datetime]]
) -> dict[str, tuple[int, int]]:
    """Momentary rows of the period chained to an earlier one: (all, not on a MED)."""
    c = report_momentary_chained
    key = group_key_expr(group_by, c).label("key")
    rows = await session.execute(
        sa.select(key, sa.func.count().label("n"),
                  sa.func.sum(_n(sa.not_(in_ranges(c.c.start, med)))).label("nx"))
        .where(c.c.start >= ts(period.start), c.c.start < ts(period.end))
        .group_by(key)
    )  # fmt: skip
    return {r.key: (int(r.n), int(r.nx or 0)) for r in rows}


async def rollup_group_sums(
    session: AsyncSession,
    period: Period,
    group_by: str,
    cemi_n: int,
    med_days: list[date],
    tz: tzinfo,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]], dict[str, tuple[int, int]]]:
    """Per group: the sums with every interruption, and without those starting on MEDs;
    and the MAIFIe momentary events (all, not on a MED)."""
    med, med_inside = _med_ranges(med_days, tz), _med_ranges(med_days, tz, period)
    pieces = await _raw_pieces(session, period, group_by, med, med_inside)
    month = _month_piece(period, group_by)
    if month is not None:
        pieces.append(month)
    u = sa.union_all(*pieces).subquery("pieces")
    rows = await session.execute(
        sa.select(u.c.key, *(sa.func.sum(u.c[c]).label(c) for c in _COLUMNS)).group_by(u.c.key)
    )
    base: dict[str, dict[str, float]] = {}
    excl: dict[str, dict[str, float]] = {}
    for r in rows:
        v = r._mapping
        if not v["rows"]:
            continue  # no interruption of this group overlaps the period
        base[r.key] = {c: v[c] or 0 for c in ("ci", "cmi", "pci", "pcmi", "mom")}
        excl[r.key] = {**base[r.key], **{c: v[c + "_x"] or 0 for c in ("ci", "cmi", "mom")}}
    pc = _customer_counts(Dialect.of(session), period, group_by, med_inside)
    rows = await session.execute(
        sa.select(
            pc.c.key,
            sa.func.sum(_n(pc.c.n > 0)).label("interrupted"),
            sa.func.sum(_n(pc.c.n > cemi_n)).label("cemi"),
            sa.func.sum(_n(pc.c.nx > 0)).label("interrupted_x"),
            sa.func.sum(_n(pc.c.nx > cemi_n)).label("cemi_x"),
        ).group_by(pc.c.key)
    )
    for r in rows:
        if r.key not in base:
            continue
        for target, suffix in ((base, ""), (excl, "_x")):
            sums = target[r.key]
            sums["interrupted"] = int(r._mapping["interrupted" + suffix] or 0)
            sums["cemi"] = int(r._mapping["cemi" + suffix] or 0)
    chained = await _chained(session, period, group_by, med)
    events: dict[str, tuple[int, int]] = {}
    for key, sums in base.items():
        n, nx = chained.get(key, (0, 0))
        events[key] = (int(sums["mom"]) - n, int(excl[key]["mom"]) - nx)
    return base, excl, events


__all__ = ["SUMS", "in_local_days", "rollup_group_sums"]
