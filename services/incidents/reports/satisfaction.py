"""Satisfaction report (DESIGN sections 9 and 11).

impact_mean is the mean per affected customer (Σ impact / Σ customers affected), as each
incident records it; component shares are each component's part of the summed component
impact. An ETR "hits" when restoration came within ±30 minutes of the ETR in force.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from services.incidents.reports.aggregation import percentile, ratio
from services.incidents.reports.records import (
    EtrErrorRecord,
    FirstNoticeRecord,
    IncidentImpactRecord,
    Period,
    SurveyRecord,
)

ETR_HIT_WINDOW_MIN = 30.0
# Histogram edges of ETR error (minutes, restored − ETR; negative = early).
ETR_BINS: tuple[float, ...] = (-240, -120, -60, -30, 30, 60, 120, 240)


def _etr_bin(error: float) -> str:
    lower: float | None = None
    for edge in ETR_BINS:
        if error < edge:
            return f"<{edge:g}" if lower is None else f"{lower:g}..{edge:g}"
        lower = edge
    return f">={ETR_BINS[-1]:g}"


def _etr_summary(errors: Sequence[EtrErrorRecord]) -> dict[str, Any]:
    by_cause: dict[str, list[float]] = defaultdict(list)
    for e in errors:
        by_cause[e.cause or "unknown"].append(e.error_min)
    histogram = Counter(_etr_bin(e.error_min) for e in errors)
    labels = [f"<{ETR_BINS[0]:g}"]
    labels += [f"{lo:g}..{hi:g}" for lo, hi in zip(ETR_BINS, ETR_BINS[1:], strict=False)]
    labels += [f">={ETR_BINS[-1]:g}"]
    return {
        "count": len(errors),
        "histogram": {label: histogram.get(label, 0) for label in labels},
        "by_cause": {
            cause: {
                "count": len(values),
                "hit_rate": ratio(sum(abs(v) <= ETR_HIT_WINDOW_MIN for v in values), len(values)),
                "mean_min": sum(values) / len(values),
                "p50_min": percentile(values, 50),
                "p90_abs_min": percentile([abs(v) for v in values], 90),
            }
            for cause, values in sorted(by_cause.items())
        },
    }


def satisfaction_report(
    period: Period,
    impacts: Sequence[IncidentImpactRecord],
    first_notices: Sequence[FirstNoticeRecord] = (),
    etr_errors: Sequence[EtrErrorRecord] = (),
    surveys: Sequence[SurveyRecord] = (),
    *,
    calibration_r2: float | None = None,
    top_n: int = 10,
) -> dict[str, Any]:
    """The satisfaction report of DESIGN section 11 as a JSON-ready dict.

    ``impacts`` are filtered to incidents detected in the period; the other inputs are
    taken as given (the adapter selects them for those incidents). ``etr_hit_rate`` is a
    fraction (0..1).
    """
    chosen = [i for i in impacts if period.contains(i.detected_at)]
    total = sum(i.impact_total for i in chosen)
    affected = sum(i.customers_affected for i in chosen)
    component_sums: dict[str, float] = defaultdict(float)
    for i in chosen:
        for name, value in i.components.items():
            component_sums[name] += value
    component_total = sum(component_sums.values())
    top = sorted(chosen, key=lambda i: (-i.impact_total, i.incident_id))[:top_n]
    delays = [n.delay_min for n in first_notices if n.delay_min is not None]
    hits = sum(abs(e.error_min) <= ETR_HIT_WINDOW_MIN for e in etr_errors)
    scores = [s.score for s in surveys]
    return {
        "period": period.as_json(),
        "incidents": len(chosen),
        "impact_total": total,
        "impact_mean": ratio(total, affected),
        "impact_mean_per_incident": ratio(total, len(chosen)),
        "customers_affected": affected,
        "components": {
            name: (value / component_total if component_total else 0.0)
            for name, value in sorted(component_sums.items())
        },
        "top": [
            {
                "incident_id": i.incident_id,
                "area": i.area,
                "feeder_id": i.feeder_id,
                "impact_total": i.impact_total,
                "customers_affected": i.customers_affected,
                "customer_minutes": i.customer_minutes,
            }
            for i in top
        ],
        "first_notice_p90_min": percentile(delays, 90),
        "first_notice": {
            "customers": len(first_notices),
            "notified": len(delays),
            "p50_min": percentile(delays, 50),
        },
        "etr_hit_rate": ratio(hits, len(etr_errors)),
        "etr_errors": _etr_summary(etr_errors),
        "survey": {
            "responses": len(scores),
            "mean_score": ratio(sum(scores), len(scores)),
            "distribution": {str(k): scores.count(k) for k in range(1, 6)},
        },
        "calibration_r2": calibration_r2,
    }
