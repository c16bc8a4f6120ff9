"""SLA attainment report (DESIGN sections 7 and 11).

Per target: how many incidents it applied to, how many met it, met %, p50/p90/p99 of the
measured minutes and the incident ids that breached. An incident whose measured event has
not happened yet counts as breached once its deadline is past ``as_of`` (normally the end
of the period) and is left out (``pending``) before that. For ``planned_notice`` the
measure is the notice lead time and *longer* is better.

The per-customer view uses each interruption's own duration against its area's overall
restoration commitment (detection → restored).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.incidents.reports.aggregation import percentile, ratio
from services.incidents.reports.interruptions import duration_min, is_sustained
from services.incidents.reports.records import IncidentSlaRecord, InterruptionRecord, Period

TARGETS: tuple[str, ...] = (
    "acknowledge",
    "on_site",
    "restore_after_arrival",
    "restore_overall",
    "first_notice",
    "planned_notice",
)


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """Target minutes; the per-area ones are keyed by area (urban, rural, remote).

    Production code builds this from ``policy.yaml``; :data:`STATE_GRID_DEFAULTS` holds
    the DESIGN defaults for tests and tools.
    """

    acknowledge_min: float
    on_site_min: Mapping[str, float]
    restore_after_arrival_min: Mapping[str, float]
    first_notice_min: float
    planned_notice_min: float
    temporary_notice_min: float
    restore_overall_min: Mapping[str, float] = field(default_factory=dict)
    acknowledge_by_area: Mapping[str, float] = field(default_factory=dict)

    def acknowledge(self, area: str) -> float:
        """The acknowledge target of an area (the common one unless the area has its own)."""
        return self.acknowledge_by_area.get(area, self.acknowledge_min)

    def overall(self, area: str) -> float:
        """Detection → restored commitment: explicit, or on-site plus after-arrival."""
        if area in self.restore_overall_min:
            return self.restore_overall_min[area]
        return self.on_site_min[area] + self.restore_after_arrival_min[area]


STATE_GRID_DEFAULTS = SlaTargets(
    acknowledge_min=5,
    on_site_min={"urban": 45, "rural": 90, "remote": 120},
    restore_after_arrival_min={"urban": 180, "rural": 240, "remote": 360},
    first_notice_min=15,
    planned_notice_min=7 * 24 * 60,
    temporary_notice_min=24 * 60,
)


@dataclass(slots=True)
class _Tally:
    count: int = 0
    met: int = 0
    pending: int = 0
    minutes: list[float] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)

    def as_json(self, target: str) -> dict[str, Any]:
        pct = ratio(self.met, self.count)
        return {
            "target": target,
            "count": self.count,
            "met": self.met,
            "met_pct": None if pct is None else pct * 100.0,
            "p50_min": percentile(self.minutes, 50),
            "p90_min": percentile(self.minutes, 90),
            "p99_min": percentile(self.minutes, 99),
            "breaches": sorted(self.breaches),
            "pending": self.pending,
        }


def _minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60.0


def _deadline_check(
    tally: _Tally, incident_id: str, start: datetime, end: datetime | None, limit: float,
    as_of: datetime,
) -> bool | None:
    """Score one 'happen within limit minutes of start' target; None when pending."""
    if end is None:
        if as_of < start + timedelta(minutes=limit):
            tally.pending += 1
            return None
        tally.count += 1
        tally.breaches.append(incident_id)
        return False
    measured = _minutes(start, end)
    tally.count += 1
    tally.minutes.append(measured)
    if measured <= limit:
        tally.met += 1
        return True
    tally.breaches.append(incident_id)
    return False


def _planned_notice(
    tally: _Tally, rec: IncidentSlaRecord, targets: SlaTargets
) -> bool | None:
    start = rec.scheduled_start or rec.detected_at
    needed = targets.temporary_notice_min if rec.temporary else targets.planned_notice_min
    tally.count += 1
    lead = None if rec.planned_notice_at is None else _minutes(rec.planned_notice_at, start)
    if lead is not None:
        tally.minutes.append(lead)
        if lead >= needed:
            tally.met += 1
            return True
    tally.breaches.append(rec.incident_id)
    return False


def _score(
    rec: IncidentSlaRecord, targets: SlaTargets, tallies: Mapping[str, _Tally], as_of: datetime
) -> dict[str, bool | None]:
    if rec.kind == "planned":
        return {"planned_notice": _planned_notice(tallies["planned_notice"], rec, targets)}
    out = {
        "acknowledge": _deadline_check(
            tallies["acknowledge"], rec.incident_id, rec.detected_at, rec.acknowledged_at,
            targets.acknowledge(rec.area), as_of,
        )
    }
    if rec.kind != "outage":
        return out
    iid, area = rec.incident_id, rec.area
    out["on_site"] = _deadline_check(
        tallies["on_site"], iid, rec.detected_at, rec.arrived_at, targets.on_site_min[area], as_of
    )
    if rec.arrived_at is not None:
        out["restore_after_arrival"] = _deadline_check(
            tallies["restore_after_arrival"], iid, rec.arrived_at, rec.restored_at,
            targets.restore_after_arrival_min[area], as_of,
        )
    out["restore_overall"] = _deadline_check(
        tallies["restore_overall"], iid, rec.detected_at, rec.restored_at,
        targets.overall(area), as_of,
    )
    out["first_notice"] = _deadline_check(
        tallies["first_notice"], iid, rec.detected_at, rec.first_notice_at,
        targets.first_notice_min, as_of,
    )
    return out


def _customer_view(
    interruptions: Sequence[InterruptionRecord], period: Period, targets: SlaTargets
) -> dict[str, Any]:
    affected = within = pending = 0
    for r in interruptions:
        if r.planned or not period.contains(r.start) or not is_sustained(r, period.end):
            continue
        limit = targets.overall(r.area)
        took = duration_min(r, period.end)
        if r.end is None and took <= limit:
            pending += 1
            continue
        affected += 1
        within += r.end is not None and took <= limit
    pct = ratio(within, affected)
    return {
        "affected": affected,
        "restored_within_commitment": within,
        "pct": None if pct is None else pct * 100.0,
        "pending": pending,
    }


def sla_report(
    period: Period,
    incidents: Sequence[IncidentSlaRecord],
    interruptions: Sequence[InterruptionRecord],
    targets: SlaTargets,
    *,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The SLA report of DESIGN section 11 as a JSON-ready dict.

    ``incidents`` detected (planned: scheduled to start) in the period are scored;
    ``interruptions`` feed the per-customer view. ``by_area`` repeats the target rows per
    area for the HTML chart.
    """
    now = as_of or period.end
    tallies = {t: _Tally() for t in TARGETS}
    area_tallies: dict[str, dict[str, _Tally]] = defaultdict(lambda: {t: _Tally() for t in TARGETS})
    for rec in incidents:
        anchor = rec.scheduled_start if rec.kind == "planned" and rec.scheduled_start else (
            rec.detected_at
        )
        if not period.contains(anchor):
            continue
        _score(rec, targets, tallies, now)
        _score(rec, targets, area_tallies[rec.area], now)
    by_area = []
    for area, per_target in sorted(area_tallies.items()):
        count = sum(t.count for t in per_target.values())
        met = sum(t.met for t in per_target.values())
        pct = ratio(met, count)
        by_area.append(
            {
                "area": area,
                "count": count,
                "met": met,
                "met_pct": None if pct is None else pct * 100.0,
                "targets": [per_target[t].as_json(t) for t in TARGETS],
            }
        )
    return {
        "period": period.as_json(),
        "targets": [tallies[t].as_json(t) for t in TARGETS],
        "customers": _customer_view(interruptions, period, targets),
        "by_area": by_area,
    }
