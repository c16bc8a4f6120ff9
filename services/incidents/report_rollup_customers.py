"""Customers interrupted and CEMI_n per group from the roll-ups (``report_rollup_sums``).

Counting customers needs each customer's number of sustained interruptions in the period:
whole quarters of ``report_customer_quarters`` and months of ``report_customer_months``,
plus or minus the raw rows between each period bound and its nearest month start, the open
rows, and (without MEDs) less the closed rows starting on a MED; grouped per group and
customer. That grouping is the report's largest single cost (a month holds ~64,000
interrupted customers at 1,000,000 served), so on PostgreSQL it can be split into disjoint
customer shards that run on separate connections (``report_lanes``); their per-group
counts add up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.incidents.report_interruptions import I, measures
from services.incidents.report_rollups import (
    in_ranges,
    report_customer_months,
    report_customer_quarters,
    rollup_key,
    split_months,
    split_quarters,
)
from services.incidents.report_sql import Dialect, group_key_expr, ts
from services.incidents.reports.records import Period


def _n(flag: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return sa.case((flag, value), else_=0)


# Shard 0 takes ~55 % of the customers: the other connection also sums the MED pieces.
SHARD_SPLIT = 2**31 // 10


def in_shard(customer_id: ColumnElement[Any], shard: tuple[int, int]) -> ColumnElement[bool]:
    """Whether the customer falls in shard ``index`` of ``count`` (1 or 2; two shards only
    on PostgreSQL, by ``hashtext`` below or above ``SHARD_SPLIT``), so every row of one
    customer lands in the same shard whichever table it comes from. A range test, not
    ``= 0``: the planner guesses a third of the rows for it (and hashes), not 0.5 % (and
    sorts)."""
    index, count = shard
    if count == 1:
        return sa.true()
    if count != 2:
        raise ValueError(f"customer shards are 1 or 2, not {count}")
    h = sa.func.hashtext(customer_id)
    return h < SHARD_SPLIT if index == 0 else h >= SHARD_SPLIT


def _customer_counts(
    dialect: Dialect,
    period: Period,
    group_by: str,
    med: list[tuple[datetime, datetime]],
    shard: tuple[int, int],
) -> sa.Subquery:
    """Per group and customer: unplanned sustained interruptions starting in the period
    (n) and those not starting on a MED (nx); of the customers in ``shard``."""
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
                    .where(in_ranges(t.c[column], ranges), in_shard(t.c.customer_id, shard))
                )  # fmt: skip
    closed = sa.and_(I.c.end.is_not(None), in_shard(I.c.customer_id, shard))
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
        .where(sus, in_shard(I.c.customer_id, shard))
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



async def customer_sums(
    session: AsyncSession, period: Period, group_by: str, cemi_n: int,
    med_inside: list[tuple[datetime, datetime]], shard: tuple[int, int] = (0, 1),
) -> dict[str, tuple[int, int, int, int]]:  # fmt: skip
    """Per group: customers interrupted and customers over CEMI_n, with and without the
    interruptions starting on a MED (``med_inside``: their UTC ranges in the period); of
    the customers in ``shard`` (see ``in_shard``)."""
    dialect = Dialect.of(session)
    pc = _customer_counts(dialect, period, group_by, med_inside, shard)
    rows = await session.execute(
        sa.select(
            pc.c.key,
            sa.func.sum(_n(pc.c.n > 0)).label("interrupted"),
            sa.func.sum(_n(pc.c.n > cemi_n)).label("cemi"),
            sa.func.sum(_n(pc.c.nx > 0)).label("interrupted_x"),
            sa.func.sum(_n(pc.c.nx > cemi_n)).label("cemi_x"),
        ).group_by(pc.c.key)
    )
    return {
        r.key: (int(r.interrupted or 0), int(r.cemi or 0), int(r.interrupted_x or 0),
                int(r.cemi_x or 0))
        for r in rows
    }  # fmt: skip
