"""Per-group reliability sums from the roll-ups (the fast path of ``report_reliability``).

Every interruption that overlaps the period falls in exactly one class:
- closed and starting in the period: whole months of ``report_months`` plus or minus the raw
  rows between each period bound and its nearest month start (``split_months``); the ones
  that end after the period lose their minutes past the end (raw rows found through
  ``report_hours.max_end``); for the without-MED sums the closed rows starting on a MED are
  taken away (whole hours from ``report_hours``, the cut ends of a MED row by row);
- open, or starting before the period and still running at its start: raw rows measured
  exactly as ``report_reliability._per_customer`` measures them.
Per customer (customers interrupted, CEMI_n) the same split runs on
``report_customer_quarters`` (whole quarters) and ``report_customer_months`` (the rest).
The result equals ``report_reliability._group_sums``. MAIFIe events are the momentary rows
less those chained to an earlier one (``report_momentary_chained``), which equals
``report_interruptions.momentary_event_rows``.

Two rounds: ``rollup_base`` (whole months and strips) needs no MED, so it runs while the
MED threshold is found; ``rollup_group_sums`` then reads the rest, with the per-customer
grouping on a second connection where ``report_lanes`` allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.incidents.report_interruptions import I, measures
from services.incidents.report_lanes import Lanes
from services.incidents.report_rollup_customers import customer_sums
from services.incidents.report_rollups import (
    US_PER_MIN,
    ceil_hour,
    first_hour_ending_after,
    floor_hour,
    in_ranges,
    report_hours,
    report_momentary_chained,
    report_months,
    rollup_key,
    split_months,
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


def _strips(dialect: Dialect, period: Period, group_by: str) -> sa.Select[Any] | None:
    """Closed rows between each period bound and its nearest month start, signed; the
    without-MED columns take the same values (the MED pieces take MED rows out)."""
    split = split_months(period.start, period.end)
    if not (split.plus or split.minus):
        return None
    m = measures(dialect, period)
    unplanned, planned = sa.not_(I.c.planned), I.c.planned
    sus, psus = sa.and_(m.sustained, unplanned), sa.and_(m.sustained, planned)
    mom = sa.and_(sa.not_(m.sustained), unplanned)  # closed rows: momentary = not sustained
    key = group_key_expr(group_by, I)
    sign = sa.case((in_ranges(I.c.start, split.plus), 1), else_=-1)
    full = {
        "ci": sa.func.sum(_n(sus, sign)), "cmi": sa.func.sum(_n(sus, sign * m.duration)),
        "pci": sa.func.sum(_n(psus, sign)), "pcmi": sa.func.sum(_n(psus, sign * m.duration)),
        "mom": sa.func.sum(_n(mom, sign)), "rows": sa.func.sum(sign),
    }  # fmt: skip
    both = {**full, "ci_x": full["ci"], "cmi_x": full["cmi"], "mom_x": full["mom"]}
    strips = in_ranges(I.c.start, split.plus + split.minus)
    return _select(key, **both).where(I.c.end.is_not(None), strips).group_by(key)


@dataclass(frozen=True, slots=True)
class EdgeHours:
    """Where the rows running past the period end, and into it from before, start."""

    past_end_from: datetime | None
    live_from: datetime | None


async def edge_hours(session: AsyncSession, period: Period) -> EdgeHours:
    """The earliest hours whose closed rows may end after the period (past its end) or
    at or after its start (running into it), from ``report_hours.max_end``."""
    ps, pe = period.start, period.end
    return EdgeHours(
        await first_hour_ending_after(session, floor_hour(ps), pe, pe, inclusive=False),
        await first_hour_ending_after(session, _EPOCH, ps, ps, inclusive=True),
    )


def _med_hours(
    group_by: str, med_inside: list[tuple[datetime, datetime]]
) -> tuple[sa.Select[Any] | None, list[tuple[datetime, datetime]]]:
    """The closed rows starting in the whole UTC hours of the MEDs (cut to the period), to
    take out of the without-MED sums, from ``report_hours``; and the partial hours left
    at the cut ends, to read row by row."""
    whole: list[tuple[datetime, datetime]] = []
    partial: list[tuple[datetime, datetime]] = []
    for lo, hi in med_inside:
        h0, h1 = ceil_hour(lo), floor_hour(hi)
        if h0 < h1:
            whole.append((h0, h1))
            partial += [(a, b) for a, b in ((lo, h0), (h1, hi)) if a < b]
        else:
            partial.append((lo, hi))
    if not whole:
        return None, partial
    h = report_hours
    key = rollup_key(group_by, h)
    piece = (
        _select(
            key,
            ci_x=-sa.func.sum(h.c.sustained_n),
            cmi_x=-sa.func.sum(h.c.sustained_us) / US_PER_MIN,
            mom_x=-sa.func.sum(h.c.momentary_n),
        )
        .where(in_ranges(h.c.hour, whole))
        .group_by(key)
    )
    return piece, partial


def _med_pieces(
    dialect: Dialect,
    period: Period,
    group_by: str,
    edges: EdgeHours,
    med: list[tuple[datetime, datetime]],
    med_inside: list[tuple[datetime, datetime]],
) -> list[sa.Select[Any]]:
    """The pieces that depend on the MEDs: rows past the period end, rows open or running
    into the period, and the closed rows starting on a MED (out of the without-MED sums)."""
    m = measures(dialect, period)
    unplanned, planned = sa.not_(I.c.planned), I.c.planned
    sus, psus = sa.and_(m.sustained, unplanned), sa.and_(m.sustained, planned)
    mom = sa.and_(sa.not_(m.sustained), unplanned)  # closed rows: momentary = not sustained
    key = group_key_expr(group_by, I)
    ps, pe = period.start, period.end
    closed = I.c.end.is_not(None)
    off = sa.not_(in_ranges(I.c.start, med))  # whole MED days, also before the period
    pieces: list[sa.Select[Any]] = []
    # Closed rows starting in the period and ending after it: their minutes past the end.
    if edges.past_end_from is not None:
        past = m.duration - m.clipped
        pieces.append(
            _select(
                key,
                cmi=sa.func.sum(_n(sus, -past)), pcmi=sa.func.sum(_n(psus, -past)),
                cmi_x=sa.func.sum(_n(sa.and_(sus, off), -past)),
            )  # fmt: skip
            .where(closed, I.c.start >= ts(max(edges.past_end_from, utc(ps))))
            .where(I.c.start < ts(pe), I.c.end > ts(pe))
            .group_by(key)
        )
    # Open rows and rows running into the period from before it, measured exactly.
    live = sa.and_(I.c.end.is_(None), I.c.start < ts(pe))
    if edges.live_from is not None:
        live = sa.or_(live, sa.and_(closed, I.c.start >= ts(edges.live_from),
                                    I.c.start < ts(ps), I.c.end >= ts(ps)))  # fmt: skip
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
    # Closed rows starting on a MED (in the period): out of the without-MED sums; whole
    # hours from the hour roll-up, the cut ends of a MED row by row.
    hours, partial = _med_hours(group_by, med_inside)
    if hours is not None:
        pieces.append(hours)
    if partial:
        pieces.append(
            _select(
                key,
                ci_x=sa.func.sum(_n(sus, -1)), cmi_x=sa.func.sum(_n(sus, -m.duration)),
                mom_x=sa.func.sum(_n(mom, -1)),
            )  # fmt: skip
            .where(closed, in_ranges(I.c.start, partial))
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


Sums = dict[str, dict[str, float]]
Customers = dict[str, tuple[int, int, int, int]]


async def _sum_pieces(session: AsyncSession, pieces: list[sa.Select[Any]]) -> Sums:
    if not pieces:
        return {}
    u = sa.union_all(*pieces).subquery("pieces")
    rows = await session.execute(
        sa.select(u.c.key, *(sa.func.sum(u.c[c]).label(c) for c in _COLUMNS)).group_by(u.c.key)
    )
    return {r.key: {c: r._mapping[c] or 0 for c in _COLUMNS} for r in rows}


@dataclass(frozen=True, slots=True)
class BaseSums:
    """What needs no MED: the whole months and the strips beside them, summed per group,
    and where the rows crossing the period bounds start."""

    sums: Sums
    edges: EdgeHours


async def rollup_base(session: AsyncSession, period: Period, group_by: str) -> BaseSums:
    """The first round of the roll-up path (independent of the MED threshold)."""
    dialect = Dialect.of(session)
    pieces = [p for p in (_strips(dialect, period, group_by), _month_piece(period, group_by))
              if p is not None]  # fmt: skip
    sums = await _sum_pieces(session, pieces)
    return BaseSums(sums, await edge_hours(session, period))


async def rollup_group_sums(
    lanes: Lanes,
    base: BaseSums,
    period: Period,
    group_by: str,
    cemi_n: int,
    med_days: list[date],
    tz: tzinfo,
) -> tuple[Sums, Sums, dict[str, tuple[int, int]]]:
    """Per group: the sums with every interruption, and without those starting on MEDs;
    and the MAIFIe momentary events (all, not on a MED). The per-customer grouping (CEMI_n,
    CAIFI) runs in two customer shards on two connections where ``report_lanes`` allows."""
    med, med_inside = _med_ranges(med_days, tz), _med_ranges(med_days, tz, period)

    shards = 2 if lanes.parallel else 1

    async def main(s: AsyncSession) -> tuple[Customers, dict[str, tuple[int, int]]]:
        customers = await customer_sums(s, period, group_by, cemi_n, med_inside, (0, shards))
        return customers, await _chained(s, period, group_by, med)

    async def side(s: AsyncSession) -> tuple[Sums, Customers]:
        pieces = _med_pieces(Dialect.of(s), period, group_by, base.edges, med, med_inside)
        more = await _sum_pieces(s, pieces)
        if shards == 1:
            return more, {}
        return more, await customer_sums(s, period, group_by, cemi_n, med_inside, (1, 2))

    (customers, chained), (more, other_shard) = await lanes.both(main, side)
    for key, counts in other_shard.items():
        mine = customers.get(key, (0, 0, 0, 0))
        customers[key] = (mine[0] + counts[0], mine[1] + counts[1], mine[2] + counts[2],
                          mine[3] + counts[3])  # fmt: skip
    totals: Sums = {}
    for part in (base.sums, more):
        for key, values in part.items():
            into = totals.setdefault(key, dict.fromkeys(_COLUMNS, 0))
            for c in _COLUMNS:
                into[c] += values[c]
    out: Sums = {}
    excl: Sums = {}
    for key, v in totals.items():
        if not v["rows"]:
            continue  # no interruption of this group overlaps the period
        out[key] = {c: v[c] for c in ("ci", "cmi", "pci", "pcmi", "mom")}
        excl[key] = {**out[key], **{c: v[c + "_x"] for c in ("ci", "cmi", "mom")}}
    for key, (interrupted, cemi, interrupted_x, cemi_x) in customers.items():
        if key in out:
            out[key].update(interrupted=interrupted, cemi=cemi)
            excl[key].update(interrupted=interrupted_x, cemi=cemi_x)
    events: dict[str, tuple[int, int]] = {}
    for key, sums in out.items():
        n, nx = chained.get(key, (0, 0))
        events[key] = (int(sums["mom"]) - n, int(excl[key]["mom"]) - nx)
    return out, excl, events


__all__ = ["SUMS", "BaseSums", "in_local_days", "rollup_base", "rollup_group_sums"]
