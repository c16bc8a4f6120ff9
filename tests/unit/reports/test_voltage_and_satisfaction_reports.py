"""Voltage qualified rate and the satisfaction report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from services.incidents.reports import (
    EtrErrorRecord,
    FirstNoticeRecord,
    IncidentImpactRecord,
    Period,
    SagSwellCount,
    SurveyRecord,
    VoltageMinutes,
    satisfaction_report,
    voltage_report,
)
from services.incidents.reports.voltage_report import qualified_rate

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 7, 1, tzinfo=CST)
PERIOD = Period(T0, T0 + timedelta(days=30))


def readings() -> list[VoltageMinutes]:
    return [
        VoltageMinutes("M1", "T1", "F1", "urban", 1000, 10, "S1"),   # 99.0
        VoltageMinutes("M2", "T1", "F1", "urban", 500, 50, "S1"),    # 90.0
        VoltageMinutes("M3", "T2", "F2", "rural", 2000, 20, "S2"),   # 99.0
        VoltageMinutes("M4", "T2", "F2", "rural", 0, 0, "S2"),       # not a monitoring point
    ]


def disturbances() -> list[SagSwellCount]:
    return [
        SagSwellCount("M1", "T1", "F1", "urban", "sag", "instantaneous_sag", 3, "S1"),
        SagSwellCount("M2", "T1", "F1", "urban", "sag", "instantaneous_sag", 2, "S1"),
        SagSwellCount("M2", "T1", "F1", "urban", "sag", "momentary_sag", 1, "S1"),
        SagSwellCount("M3", "T2", "F2", "rural", "swell", "instantaneous_swell", 4, "S2"),
    ]


class TestVoltageReport:
    def test_qualified_rate_formula(self) -> None:
        assert qualified_rate(1000, 10) == pytest.approx(99.0)
        assert qualified_rate(0, 0) is None

    def test_groups_aggregate_minutes(self) -> None:
        report = voltage_report(PERIOD, readings(), disturbances(), group_by="area")
        groups = {g["key"]: g for g in report["groups"]}
        urban = groups["urban"]
        assert urban["monitoring_points"] == 2
        assert urban["minutes_monitored"] == 1500
        assert urban["qualified_rate"] == pytest.approx((1 - 60 / 1500) * 100)
        assert urban["target"] == 98.5
        assert urban["met"] is False
        assert urban["sags"] == {"instantaneous_sag": 5, "momentary_sag": 1}
        rural = groups["rural"]
        assert rural["monitoring_points"] == 1
        assert rural["met"] is True
        assert rural["swells"] == {"instantaneous_swell": 4}

    def test_points_and_worst_transformers(self) -> None:
        report = voltage_report(PERIOD, readings(), group_by="all")
        assert [p["meter_id"] for p in report["points"]] == ["M2", "M1", "M3"]
        worst = report["worst_transformers"]
        assert worst[0]["transformer_id"] == "T1"
        assert worst[0]["qualified_rate"] == pytest.approx(96.0)
        assert [f["key"] for f in report["by_feeder"]] == ["F1", "F2"]
        (system,) = report["groups"]
        assert set(system) >= {"key", "monitoring_points", "minutes_monitored",
                               "minutes_out_of_band", "qualified_rate", "sags", "swells"}
        assert system["qualified_rate"] == pytest.approx((1 - 80 / 3500) * 100)


def impacts() -> list[IncidentImpactRecord]:
    return [
        IncidentImpactRecord("I1", "urban", T0 + timedelta(hours=1), 300.0, 10, 1200.0,
                             {"duration": 200.0, "breach": 60.0, "notice": 40.0}, "F1"),
        IncidentImpactRecord("I2", "rural", T0 + timedelta(hours=5), 100.0, 10, 600.0,
                             {"duration": 100.0}, "F2"),
        IncidentImpactRecord("I0", "rural", T0 - timedelta(hours=5), 999.0, 1, 60.0,
                             {"duration": 999.0}),
    ]


class TestSatisfactionReport:
    def test_totals_shares_and_top(self) -> None:
        report = satisfaction_report(PERIOD, impacts(), calibration_r2=0.41)
        assert report["incidents"] == 2
        assert report["impact_total"] == pytest.approx(400.0)
        assert report["impact_mean"] == pytest.approx(20.0)  # per affected customer
        assert report["components"] == {
            "breach": pytest.approx(0.15), "duration": pytest.approx(0.75),
            "notice": pytest.approx(0.1),
        }
        assert [t["incident_id"] for t in report["top"]] == ["I1", "I2"]
        assert report["calibration_r2"] == 0.41

    def test_notices_etr_and_surveys(self) -> None:
        delays = [3.0, 8.0, 12.0, 20.0, 40.0]
        notices = [FirstNoticeRecord("I1", f"C{i}", d) for i, d in enumerate(delays)]
        notices.append(FirstNoticeRecord("I1", "C9", None))
        errors = [EtrErrorRecord("I1", 10, "tree"), EtrErrorRecord("I2", -45, "tree"),
                  EtrErrorRecord("I3", 200, None), EtrErrorRecord("I4", -30, "vehicle")]
        surveys = [SurveyRecord("I1", "C1", 5), SurveyRecord("I1", "C2", 2),
                   SurveyRecord("I2", "C3", 4)]
        report = satisfaction_report(PERIOD, impacts(), notices, errors, surveys)
        assert report["first_notice_p90_min"] == pytest.approx(float(np.percentile(delays, 90)))
        assert report["first_notice"]["notified"] == 5
        assert report["etr_hit_rate"] == pytest.approx(0.5)
        causes = report["etr_errors"]["by_cause"]
        assert set(causes) == {"tree", "unknown", "vehicle"}
        assert causes["tree"]["count"] == 2
        assert causes["tree"]["hit_rate"] == pytest.approx(0.5)
        assert sum(report["etr_errors"]["histogram"].values()) == 4
        assert report["etr_errors"]["histogram"]["-30..30"] == 2
        assert report["survey"]["responses"] == 3
        assert report["survey"]["mean_score"] == pytest.approx(11 / 3)

    def test_empty_period(self) -> None:
        report = satisfaction_report(PERIOD, [])
        assert report["impact_mean"] is None
        assert report["etr_hit_rate"] is None
        assert report["first_notice_p90_min"] is None
        assert report["survey"] == {"responses": 0, "mean_score": None,
                                    "distribution": {str(k): 0 for k in range(1, 6)}}
