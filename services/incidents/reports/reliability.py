"""Reliability indices (IEEE 1366-2022 and DL/T 836) per group for a period.

Counting rules, chosen so that consecutive periods add up:
- a customer interruption is counted in the period it *starts* in, while its minutes are
  clipped to the period (an interruption running across midnight of the period end counts
  its minutes in both periods and its interruption once);
- sustained = longer than 5 minutes; momentary ones count for MAIFI only;
- planned interruptions are reported separately and left out of the IEEE indices;
- DL/T 836 RS-1, AIHC-1 and AITC-1 count every sustained interruption, planned included,
  as the Chinese standard's RS-1 does;
- Major Event Days (system level, see ``major_event_days``) remove the unplanned
  interruptions that start on them from ``excluding_med``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from services.incidents.reports.aggregation import check_group_by, group_key, ratio
from services.incidents.reports.interruptions import clipped_minutes, is_momentary, is_sustained
from services.incidents.reports.major_event_days import (
    daily_saidi,
    local_day,
    major_event_days,
    med_threshold,
)
from services.incidents.reports.records import (
    CustomerRecord,
    InterruptionRecord,
    MomentaryEvent,
    Period,
    SaidiHistory,
)

DEFAULT_TIMEZONE = ZoneInfo("Asia/Shanghai")
# State Grid commitments for RS-1 (供电可靠率), in percent.
DEFAULT_RS1_TARGETS: Mapping[str, float] = {"urban": 99.9, "rural": 99.8}


@dataclass(slots=True)
class _Group:
    served: int = 0
    interruptions: list[InterruptionRecord] = field(default_factory=list)
    momentaries: list[MomentaryEvent] = field(default_factory=list)
    areas: set[str] = field(default_factory=set)


def _index_set(
    served: int,
    interruptions: Iterable[InterruptionRecord],
    momentaries: Iterable[MomentaryEvent],
    period: Period,
    cemi_n: int,
    tz: tzinfo,
    excluded_days: frozenset[date],
) -> dict[str, Any]:
    as_of = period.end
    ci = 0
    cmi = 0.0
    planned_ci = 0
    planned_cmi = 0.0
    momentary_count = 0
    per_customer: Counter[str] = Counter()
    for record in interruptions:
        starts_inside = period.contains(record.start)
        if not record.planned and local_day(record.start, tz) in excluded_days:
            continue
        if is_sustained(record, as_of):
            minutes = clipped_minutes(record, period)
            if record.planned:
                planned_cmi += minutes
                planned_ci += int(starts_inside)
            else:
                cmi += minutes
                if starts_inside:
                    ci += 1
                    per_customer[record.customer_id] += 1
        elif starts_inside and not record.planned and is_momentary(record, as_of):
            momentary_count += 1
    events = {
        (m.event_id, m.customer_id)
        for m in momentaries
        if period.contains(m.occurred_at) and local_day(m.occurred_at, tz) not in excluded_days
    }
    interrupted = len(per_customer)
    saifi = ratio(ci, served)
    saidi = ratio(cmi, served)
    total_hours = (cmi + planned_cmi) / 60.0
    aihc1 = ratio(total_hours, served)
    period_hours = period.minutes / 60.0
    return {
        "customer_interruptions": ci,
        "customer_minutes": cmi,
        "customers_interrupted": interrupted,
        "saifi": saifi,
        "saidi": saidi,
        "caidi": ratio(cmi, ci),
        "caifi": ratio(ci, interrupted),
        "asai": None if served == 0 else 1.0 - cmi / (served * period.minutes),
        "maifi": ratio(momentary_count, served),
        "maifi_e": ratio(len(events), served),
        "cemi": ratio(sum(1 for n in per_customer.values() if n > cemi_n), served),
        "rs1": None if aihc1 is None else (1.0 - aihc1 / period_hours) * 100.0,
        "aihc1": aihc1,
        "aitc1": ratio(ci + planned_ci, served),
        "planned": {
            "customer_interruptions": planned_ci,
            "customer_minutes": planned_cmi,
            "saifi": ratio(planned_ci, served),
            "saidi": ratio(planned_cmi, served),
        },
    }


def _period_days(period: Period, tz: tzinfo) -> list[date]:
    first = local_day(period.start, tz)
    last = local_day(period.end - timedelta(microseconds=1), tz)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _collect_groups(
    group_by: str,
    customers: Sequence[CustomerRecord],
    interruptions: Sequence[InterruptionRecord],
    momentaries: Sequence[MomentaryEvent],
) -> dict[str, _Group]:
    gb = check_group_by(group_by)
    groups: dict[str, _Group] = defaultdict(_Group)
    for c in customers:
        g = groups[group_key(gb, feeder_id=c.feeder_id, substation=c.substation, area=c.area)]
        g.served += 1
        g.areas.add(c.area)
    for r in interruptions:
        key = group_key(gb, feeder_id=r.feeder_id, substation=r.substation, area=r.area)
        groups[key].interruptions.append(r)
    for m in momentaries:
        key = group_key(gb, feeder_id=m.feeder_id, substation=m.substation, area=m.area)
        groups[key].momentaries.append(m)
    return dict(groups)


def reliability_report(
    period: Period,
    customers: Sequence[CustomerRecord],
    interruptions: Sequence[InterruptionRecord],
    momentary_events: Sequence[MomentaryEvent] = (),
    *,
    group_by: str = "all",
    history: SaidiHistory | None = None,
    cemi_n: int = 3,
    tz: tzinfo = DEFAULT_TIMEZONE,
    rs1_targets: Mapping[str, float] = DEFAULT_RS1_TARGETS,
    med_beta_multiplier: float = 2.5,
    med_history_years: int = 5,
) -> dict[str, Any]:
    """The reliability report of DESIGN section 11 as a JSON-ready dict.

    ``customers`` are all customers served; ``interruptions`` every interruption that
    overlaps the period (others are ignored); ``history`` the system daily SAIDI before the
    period for the MED threshold. Day boundaries are local days in ``tz``.
    """
    served_total = len(customers)
    in_period = [r for r in interruptions if period.contains(r.start)]
    daily = daily_saidi(in_period, served_total, tz, period.end)
    threshold = med_threshold(
        history or SaidiHistory(),
        local_day(period.start, tz),
        years=med_history_years,
        beta_multiplier=med_beta_multiplier,
    )
    meds = major_event_days(daily, threshold)
    med_set = frozenset(meds)
    med_iso = [d.isoformat() for d in meds]
    groups_out: list[dict[str, Any]] = []
    for key, group in sorted(
        _collect_groups(group_by, customers, interruptions, momentary_events).items()
    ):
        recs, moms = group.interruptions, group.momentaries
        base = _index_set(group.served, recs, moms, period, cemi_n, tz, frozenset())
        excl = _index_set(group.served, recs, moms, period, cemi_n, tz, med_set)
        areas = {key} if group_by == "area" else group.areas
        target = rs1_targets.get(next(iter(areas))) if len(areas) == 1 else None
        rs1 = base["rs1"]
        groups_out.append(
            {
                "key": key,
                "customers_served": group.served,
                **base,
                "cemi_n": cemi_n,
                "target_rs1": target,
                "rs1_met": None if target is None or rs1 is None else rs1 >= target,
                "med_days": med_iso,
                "med_threshold": threshold.threshold_min,
                "med_history_days": threshold.history_days,
                "excluding_med": excl,
            }
        )
    return {
        "period": period.as_json(),
        "group_by": group_by,
        "med": {**threshold.as_json(), "days": med_iso},
        "daily_saidi": [
            {"date": d.isoformat(), "saidi": daily.get(d, 0.0), "med": d in med_set}
            for d in _period_days(period, tz)
        ],
        "groups": groups_out,
    }
