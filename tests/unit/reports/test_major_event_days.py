"""The 2.5β Major Event Day threshold against a direct numpy computation."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from services.incidents.reports import (
    CustomerRecord,
    InterruptionRecord,
    Period,
    SaidiHistory,
    reliability_report,
)
from services.incidents.reports.major_event_days import med_threshold

CST = timezone(timedelta(hours=8))
PERIOD_START = date(2026, 7, 1)


def synthetic_history(first: date, days: int, seed: int = 7) -> dict[date, float]:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(mean=0.5, sigma=1.2, size=days)
    values[rng.random(days) < 0.3] = 0.0  # quiet days
    return {first + timedelta(days=i): float(v) for i, v in enumerate(values)}


class TestThreshold:
    def test_five_years_matches_numpy(self) -> None:
        first = date(2019, 1, 1)  # more than five years: only the last five count
        history = synthetic_history(first, (PERIOD_START - first).days)
        result = med_threshold(SaidiHistory(history), PERIOD_START)
        window_start = date(2021, 7, 1)
        window = [v for d, v in history.items() if window_start <= d < PERIOD_START]
        logs = np.log([v for v in window if v > 0])
        expected = float(np.exp(logs.mean() + 2.5 * logs.std(ddof=1)))
        assert result.history_days == (PERIOD_START - window_start).days == 1826
        assert result.nonzero_days == len(logs)
        assert result.threshold_min == pytest.approx(expected, rel=1e-12)
        assert result.beta == pytest.approx(float(logs.std(ddof=1)))

    def test_uses_as_much_history_as_exists(self) -> None:
        first = date(2025, 7, 1)
        history = synthetic_history(first, 365)
        result = med_threshold(SaidiHistory(history), PERIOD_START)
        assert result.history_days == 365
        assert result.history_start == first

    def test_missing_days_after_first_day_count_as_zero(self) -> None:
        history = {date(2026, 6, 29): 2.0, date(2026, 6, 30): 8.0}
        result = med_threshold(SaidiHistory(history, first_day=date(2026, 6, 1)), PERIOD_START)
        assert result.history_days == 30
        assert result.nonzero_days == 2
        logs = np.log([2.0, 8.0])
        assert result.threshold_min == pytest.approx(
            float(np.exp(logs.mean() + 2.5 * logs.std(ddof=1)))
        )

    def test_no_threshold_without_two_nonzero_days(self) -> None:
        result = med_threshold(SaidiHistory({date(2026, 6, 1): 3.0}), PERIOD_START)
        assert result.threshold_min is None
        assert med_threshold(SaidiHistory(), PERIOD_START).history_days == 0


class TestMedInReport:
    def test_storm_day_is_excluded(self) -> None:
        customers = [CustomerRecord(f"C{i}", "F1", "S1", "urban") for i in range(100)]
        history = SaidiHistory({date(2026, 6, 1) + timedelta(days=i): 1.0 + (i % 5) for i in
                                range(30)})
        threshold = med_threshold(history, PERIOD_START).threshold_min
        assert threshold is not None
        storm = datetime(2026, 7, 2, 3, tzinfo=CST)
        calm = datetime(2026, 7, 5, 3, tzinfo=CST)
        records = [
            InterruptionRecord("STORM", f"C{i}", storm, storm + timedelta(hours=6), False, False,
                               "F1", "S1", "urban")
            for i in range(50)
        ] + [InterruptionRecord("SMALL", "C1", calm, calm + timedelta(minutes=60), False, False,
                                "F1", "S1", "urban")]
        period = Period(datetime(2026, 7, 1, tzinfo=CST), datetime(2026, 7, 8, tzinfo=CST))
        report = reliability_report(period, customers, records, history=history, tz=CST)
        g = report["groups"][0]
        assert g["med_days"] == ["2026-07-02"]
        assert report["med"]["history_days"] == 30
        assert g["customer_interruptions"] == 51
        assert g["excluding_med"]["customer_interruptions"] == 1
        assert g["excluding_med"]["saidi"] == pytest.approx(60 / 100)
        trend = {d["date"]: d for d in report["daily_saidi"]}
        assert len(trend) == 7
        assert trend["2026-07-02"]["med"] is True
        assert trend["2026-07-02"]["saidi"] == pytest.approx(50 * 360 / 100)
