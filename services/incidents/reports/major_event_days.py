"""Major Event Days by the IEEE 1366 2.5β method.

Daily SAIDI is computed for the whole system (one threshold for every group, as IEEE 1366
defines MEDs on the system), with each interruption assigned, whole, to the local day it
starts. From up to five years of daily SAIDI before the period (as much as exists): drop
zero days, take α = mean and β = sample standard deviation of ln(SAIDI), and
T_MED = exp(α + 2.5·β). A day in the period whose SAIDI exceeds T_MED is a MED.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import numpy as np

from services.incidents.reports.interruptions import duration_min, is_sustained
from services.incidents.reports.records import InterruptionRecord, SaidiHistory

HISTORY_YEARS = 5
BETA_MULTIPLIER = 2.5


@dataclass(frozen=True, slots=True)
class MedThreshold:
    """The T_MED threshold and the history it came from (threshold None: too little data)."""

    threshold_min: float | None
    alpha: float | None
    beta: float | None
    history_days: int
    nonzero_days: int
    history_start: date | None

    def as_json(self) -> dict[str, object]:
        """JSON-ready view of the threshold."""
        return {
            "threshold_min": self.threshold_min,
            "alpha": self.alpha,
            "beta": self.beta,
            "history_days": self.history_days,
            "nonzero_days": self.nonzero_days,
            "history_start": self.history_start.isoformat() if self.history_start else None,
        }


def local_day(moment: datetime, tz: tzinfo) -> date:
    """The calendar day of ``moment`` in the reporting time zone."""
    return moment.astimezone(tz).date()


def daily_saidi(
    interruptions: Iterable[InterruptionRecord],
    customers_served: int,
    tz: tzinfo,
    as_of: datetime,
) -> dict[date, float]:
    """Daily system SAIDI (minutes) of unplanned sustained interruptions by start day.

    The adapter can use this on historical interruptions to build a :class:`SaidiHistory`,
    or compute the same sums in SQL.
    """
    if customers_served <= 0:
        return {}
    minutes: dict[date, float] = defaultdict(float)
    for record in interruptions:
        if record.planned or not is_sustained(record, as_of):
            continue
        minutes[local_day(record.start, tz)] += duration_min(record, as_of)
    return {day: total / customers_served for day, total in minutes.items()}


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def med_threshold(
    history: SaidiHistory,
    before: date,
    *,
    years: int = HISTORY_YEARS,
    beta_multiplier: float = BETA_MULTIPLIER,
) -> MedThreshold:
    """T_MED from the daily SAIDI of up to ``years`` years before the day ``before``."""
    first = history.first_day
    if first is None and history.daily_saidi:
        first = min(history.daily_saidi)
    if first is None:
        return MedThreshold(None, None, None, 0, 0, None)
    start = max(first, _years_before(before, years))
    days = max(0, (before - start).days)
    values = [history.daily_saidi.get(start + timedelta(days=i), 0.0) for i in range(days)]
    logs = np.log(np.asarray([v for v in values if v > 0], dtype=float))
    if logs.size < 2:
        return MedThreshold(None, None, None, days, int(logs.size), start if days else None)
    alpha = float(np.mean(logs))
    beta = float(np.std(logs, ddof=1))
    threshold = math.exp(alpha + beta_multiplier * beta)
    return MedThreshold(threshold, alpha, beta, days, int(logs.size), start)


def major_event_days(daily: dict[date, float], threshold: MedThreshold) -> list[date]:
    """Days whose SAIDI exceeds the threshold, in order."""
    if threshold.threshold_min is None:
        return []
    limit = threshold.threshold_min
    return sorted(day for day, saidi in daily.items() if saidi > limit)
