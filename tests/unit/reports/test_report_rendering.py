"""JSON, CSV and HTML renderings of all four reports."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from services.common.policy import load_policy
from services.incidents.reports import (
    STATE_GRID_DEFAULTS,
    CustomerRecord,
    IncidentImpactRecord,
    IncidentSlaRecord,
    InterruptionRecord,
    Period,
    SagSwellCount,
    SaidiHistory,
    VoltageMinutes,
    reliability_report,
    render_csv,
    render_html,
    render_report,
    satisfaction_report,
    sla_report,
    voltage_report,
)
from services.incidents.reports.policy_settings import ReportSettings

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 7, 1, tzinfo=CST)
PERIOD = Period(T0, T0 + timedelta(days=7))


def interruption(cid: str, feeder: str, start: datetime, minutes: float) -> InterruptionRecord:
    area = "urban" if feeder == "F1" else "rural"
    return InterruptionRecord("I1", cid, start, start + timedelta(minutes=minutes), False,
                              False, feeder, "S1", area)


def reports() -> dict[str, dict[str, Any]]:
    customers = [CustomerRecord(f"C{i}", "F1" if i < 5 else "F2", "S1",
                                "urban" if i < 5 else "rural") for i in range(10)]
    records = [interruption("C1", "F1", T0 + timedelta(days=1), 90),
               interruption("C7", "F2", T0 + timedelta(days=2), 30)]
    history = SaidiHistory({date(2026, 6, 1) + timedelta(days=i): 0.5 + i % 3 for i in range(30)})
    incidents = [IncidentSlaRecord("I1", "urban", "outage", T0, T0 + timedelta(minutes=3),
                                   T0 + timedelta(minutes=40), T0 + timedelta(minutes=100),
                                   T0 + timedelta(minutes=9))]
    volts = [VoltageMinutes("M1", "T1", "F1", "urban", 10080, 30, "S1")]
    sags = [SagSwellCount("M1", "T1", "F1", "urban", "sag", "instantaneous_sag", 2, "S1")]
    impacts = [IncidentImpactRecord("I1", "urban", T0, 50.0, 5, 450.0,
                                    {"duration": 30.0, "notice": 20.0}, "F1")]
    return {
        "reliability": reliability_report(PERIOD, customers, records, group_by="feeder",
                                          history=history, tz=CST),
        "sla": sla_report(PERIOD, incidents, records, STATE_GRID_DEFAULTS),
        "voltage": voltage_report(PERIOD, volts, sags, group_by="feeder"),
        "satisfaction": satisfaction_report(PERIOD, impacts),
    }


BINDING_TOP = {
    "reliability": {"period", "groups"},
    "sla": {"period", "targets", "customers"},
    "voltage": {"period", "groups"},
    "satisfaction": {"period", "incidents", "impact_total", "impact_mean", "components", "top",
                     "first_notice_p90_min", "etr_hit_rate", "survey", "calibration_r2"},
}
CHARTS = {"reliability": "saidi-trend", "sla": "sla-by-area", "voltage": "voltage-by-feeder",
          "satisfaction": "impact-components"}


class TestJson:
    @pytest.mark.parametrize("kind", list(BINDING_TOP))
    def test_binding_keys_and_round_trip(self, kind: str) -> None:
        report = reports()[kind]
        body, media = render_report(kind, report, "json")
        assert media == "application/json"
        decoded = json.loads(body)
        assert BINDING_TOP[kind] <= set(decoded)
        assert decoded == json.loads(json.dumps(report))

    def test_sla_target_rows(self) -> None:
        targets = reports()["sla"]["targets"]
        assert [t["target"] for t in targets] == ["acknowledge", "on_site",
                                                  "restore_after_arrival", "restore_overall",
                                                  "first_notice", "planned_notice"]
        for row in targets:
            assert {"target", "count", "met", "met_pct", "p50_min", "p90_min", "p99_min",
                    "breaches"} <= set(row)


class TestCsv:
    def test_reliability_one_row_per_group(self) -> None:
        text = render_csv("reliability", reports()["reliability"])
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["key"] for r in rows] == ["F1", "F2"]
        assert float(rows[0]["saidi"]) == pytest.approx(90 / 5)
        assert rows[0]["excluding_med_saidi"] != ""
        assert rows[0]["target_rs1"] == "99.9"

    def test_sla_rows_per_target_and_customer_row(self) -> None:
        rows = list(csv.DictReader(io.StringIO(render_csv("sla", reports()["sla"]))))
        assert rows[0]["target"] == "acknowledge"
        assert rows[0]["met"] == "1"
        assert rows[-1]["target"] == "customer_restore_commitment"
        assert rows[-1]["count"] == "2"

    def test_voltage_flattens_classes(self) -> None:
        text = render_csv("voltage", reports()["voltage"])
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows[0]["sag_instantaneous_sag"] == "2"
        assert float(rows[0]["qualified_rate"]) == pytest.approx((1 - 30 / 10080) * 100)

    def test_satisfaction_metric_rows(self) -> None:
        rows = list(csv.reader(io.StringIO(render_csv("satisfaction", reports()["satisfaction"]))))
        assert rows[0] == ["metric", "value"]
        values = dict(rows[1:])
        assert values["impact_total"] == "50.0"
        assert values["component:duration"] == "0.6"
        assert values["calibration_r2"] == ""

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match="format"):
            render_report("sla", reports()["sla"], "xlsx")


class TestHtml:
    @pytest.mark.parametrize("kind", list(CHARTS))
    def test_page_has_its_chart(self, kind: str) -> None:
        page = render_html(kind, reports()[kind])
        assert page.startswith("<!DOCTYPE html>")
        assert re.search(rf'<svg [^>]*class="chart" data-chart="{CHARTS[kind]}"', page)
        assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "@media print" in page

    def test_reliability_threshold_line_drawn(self) -> None:
        page = render_html("reliability", reports()["reliability"])
        assert 'class="threshold"' in page
        assert "T_MED" in page

    def test_values_are_escaped(self) -> None:
        report = reports()["voltage"]
        report["groups"][0]["key"] = "<script>x</script>"
        assert "<script>x" not in render_html("voltage", report)


class TestPolicySettings:
    def test_built_in_policy(self) -> None:
        settings = ReportSettings.from_policy(load_policy())
        assert settings.sla.overall("urban") == 225
        assert settings.sla.overall("remote") == 480
        assert settings.sla.planned_notice_min == 7 * 24 * 60
        assert settings.cemi_n == 3
        assert settings.rs1_targets["rural"] == 99.8
        assert settings.voltage_targets["urban"] == 98.5
