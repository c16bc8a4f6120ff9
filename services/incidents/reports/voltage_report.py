"""Voltage qualified rate (电压合格率) and sag/swell counts (DESIGN section 11).

qualified rate = (1 − minutes out of band / minutes monitored) · 100, per monitoring point
(a meter that sent voltage readings in the period) and aggregated over a group by summing
minutes, so a point counts in proportion to how long it was monitored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.incidents.reports.aggregation import check_group_by, group_key
from services.incidents.reports.records import Period, SagSwellCount, VoltageMinutes

# State Grid targets for the voltage qualified rate, in percent.
DEFAULT_VOLTAGE_TARGETS: Mapping[str, float] = {"urban": 98.5, "rural": 97.5}


def qualified_rate(minutes_monitored: float, minutes_out_of_band: float) -> float | None:
    """(1 − out/monitored)·100, or None when nothing was monitored."""
    if minutes_monitored <= 0:
        return None
    out = min(max(minutes_out_of_band, 0.0), minutes_monitored)
    return (1.0 - out / minutes_monitored) * 100.0


@dataclass(slots=True)
class _Agg:
    points: set[str] = field(default_factory=set)
    monitored: float = 0.0
    out: float = 0.0
    areas: set[str] = field(default_factory=set)
    feeders: set[str] = field(default_factory=set)
    sags: Counter[str] = field(default_factory=Counter)
    swells: Counter[str] = field(default_factory=Counter)

    def add(self, row: VoltageMinutes) -> None:
        if row.minutes_monitored > 0:
            self.points.add(row.meter_id)
        self.monitored += row.minutes_monitored
        self.out += row.minutes_out_of_band
        self.areas.add(row.area)
        self.feeders.add(row.feeder_id)

    def add_events(self, row: SagSwellCount) -> None:
        (self.sags if row.kind == "sag" else self.swells)[row.category] += row.count
        self.areas.add(row.area)

    def as_json(self, key: str, targets: Mapping[str, float]) -> dict[str, Any]:
        rate = qualified_rate(self.monitored, self.out)
        target = targets.get(next(iter(self.areas))) if len(self.areas) == 1 else None
        return {
            "key": key,
            "monitoring_points": len(self.points),
            "minutes_monitored": self.monitored,
            "minutes_out_of_band": self.out,
            "qualified_rate": rate,
            "target": target,
            "met": None if rate is None or target is None else rate >= target,
            "sags": dict(sorted(self.sags.items())),
            "swells": dict(sorted(self.swells.items())),
        }


def _aggregate(
    keyed_minutes: Iterable[tuple[str, VoltageMinutes]],
    keyed_events: Iterable[tuple[str, SagSwellCount]] = (),
) -> dict[str, _Agg]:
    aggs: dict[str, _Agg] = defaultdict(_Agg)
    for key, row in keyed_minutes:
        aggs[key].add(row)
    for key, event in keyed_events:
        aggs[key].add_events(event)
    return dict(sorted(aggs.items()))


def voltage_report(
    period: Period,
    minutes: Sequence[VoltageMinutes],
    sag_swell: Sequence[SagSwellCount] = (),
    *,
    group_by: str = "all",
    targets: Mapping[str, float] = DEFAULT_VOLTAGE_TARGETS,
    worst: int = 10,
    include_points: bool = True,
) -> dict[str, Any]:
    """The voltage report of DESIGN section 11 as a JSON-ready dict.

    Besides the binding ``groups``, it lists ``points`` (per meter, worst first, when
    ``include_points``), ``by_feeder`` (for the chart) and the ``worst`` transformers.
    """
    gb = check_group_by(group_by)

    def key_of(row: VoltageMinutes | SagSwellCount) -> str:
        return group_key(gb, feeder_id=row.feeder_id, substation=row.substation, area=row.area)

    groups = _aggregate(((key_of(r), r) for r in minutes), ((key_of(e), e) for e in sag_swell))
    by_feeder = _aggregate((r.feeder_id, r) for r in minutes)
    by_transformer = _aggregate((r.transformer_id, r) for r in minutes)
    transformer_rows = []
    for tid, agg in by_transformer.items():
        row = agg.as_json(tid, targets)
        transformer_rows.append(
            {
                "transformer_id": tid,
                "feeder_id": ",".join(sorted(agg.feeders)),
                "monitoring_points": row["monitoring_points"],
                "minutes_out_of_band": agg.out,
                "qualified_rate": row["qualified_rate"],
            }
        )
    transformer_rows = [t for t in transformer_rows if t["qualified_rate"] is not None]
    transformer_rows.sort(key=lambda t: (t["qualified_rate"], t["transformer_id"]))
    report: dict[str, Any] = {
        "period": period.as_json(),
        "group_by": gb,
        "groups": [agg.as_json(key, targets) for key, agg in groups.items()],
        "by_feeder": [agg.as_json(key, targets) for key, agg in by_feeder.items()],
        "worst_transformers": transformer_rows[:worst],
    }
    if include_points:
        points = [
            {
                "meter_id": r.meter_id,
                "transformer_id": r.transformer_id,
                "feeder_id": r.feeder_id,
                "area": r.area,
                "minutes_monitored": r.minutes_monitored,
                "minutes_out_of_band": r.minutes_out_of_band,
                "qualified_rate": qualified_rate(r.minutes_monitored, r.minutes_out_of_band),
            }
            for r in minutes
            if r.minutes_monitored > 0
        ]
        points.sort(key=lambda p: (p["qualified_rate"], p["meter_id"]))
        report["points"] = points
    return report
