"""SLA attainment: met counts, percentiles, breaches, pending, per-customer view."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from services.incidents.reports import (
    STATE_GRID_DEFAULTS,
    IncidentSlaRecord,
    InterruptionRecord,
    Period,
    sla_report,
)

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 7, 1, tzinfo=CST)
PERIOD = Period(T0, T0 + timedelta(days=1))


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def outage(iid: str, area: str, detected: float, ack: float | None, arrived: float | None,
           restored: float | None, notice: float | None) -> IncidentSlaRecord:
    def rel(n: float | None) -> datetime | None:
        return None if n is None else minutes(detected + n)

    return IncidentSlaRecord(
        incident_id=iid, area=area, kind="outage", detected_at=minutes(detected),
        acknowledged_at=rel(ack), arrived_at=rel(arrived), restored_at=rel(restored),
        first_notice_at=rel(notice),
    )


def incidents() -> list[IncidentSlaRecord]:
    return [
        outage("I1", "urban", 60, ack=2, arrived=30, restored=120, notice=10),
        outage("I2", "urban", 120, ack=7, arrived=50, restored=300, notice=20),  # breaches
        outage("I3", "rural", 180, ack=4, arrived=80, restored=200, notice=12),
        outage("I4", "rural", 240, ack=3, arrived=100, restored=400, notice=14),
        # Detected 3 minutes before the end: every target still pending.
        outage("I5", "urban", 1437, ack=None, arrived=None, restored=None, notice=None),
        # Detected before the period: not scored.
        outage("I0", "urban", -30, ack=1, arrived=10, restored=20, notice=5),
        IncidentSlaRecord("P1", "urban", "planned", detected_at=minutes(0),
                          scheduled_start=minutes(600),
                          planned_notice_at=minutes(600) - timedelta(days=8)),
        IncidentSlaRecord("P2", "rural", "planned", detected_at=minutes(0),
                          scheduled_start=minutes(700),
                          planned_notice_at=minutes(700) - timedelta(days=2)),
        IncidentSlaRecord("P3", "rural", "planned", detected_at=minutes(0), temporary=True,
                          scheduled_start=minutes(800),
                          planned_notice_at=minutes(800) - timedelta(hours=30)),
    ]


def by_target(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {t["target"]: t for t in report["targets"]}  # type: ignore[attr-defined, index]


class TestTargets:
    def test_acknowledge(self) -> None:
        t = by_target(sla_report(PERIOD, incidents(), [], STATE_GRID_DEFAULTS))["acknowledge"]
        assert (t["count"], t["met"], t["pending"]) == (4, 3, 1)
        assert t["met_pct"] == pytest.approx(75.0)
        assert t["breaches"] == ["I2"]
        assert t["p50_min"] == pytest.approx(float(np.percentile([2, 7, 4, 3], 50)))
        assert t["p90_min"] == pytest.approx(float(np.percentile([2, 7, 4, 3], 90)))
        assert t["p99_min"] == pytest.approx(float(np.percentile([2, 7, 4, 3], 99)))

    def test_on_site_uses_area_targets(self) -> None:
        t = by_target(sla_report(PERIOD, incidents(), [], STATE_GRID_DEFAULTS))["on_site"]
        # urban 45: I1 30 met, I2 50 breached; rural 90: I3 80 met, I4 100 breached.
        assert (t["count"], t["met"]) == (4, 2)
        assert t["breaches"] == ["I2", "I4"]

    def test_restore_targets(self) -> None:
        r = by_target(sla_report(PERIOD, incidents(), [], STATE_GRID_DEFAULTS))
        after = r["restore_after_arrival"]
        # after arrival: I1 90 ≤ 180, I2 250 ≤ 180? no, I3 120 ≤ 240, I4 300 > 240.
        assert after["breaches"] == ["I2", "I4"]
        overall = r["restore_overall"]
        # overall: urban 225 (I1 120 met, I2 300 breached), rural 330 (200 met, 400 breached).
        assert (overall["count"], overall["met"]) == (4, 2)
        assert overall["p50_min"] == pytest.approx(250.0)

    def test_first_notice(self) -> None:
        t = by_target(sla_report(PERIOD, incidents(), [], STATE_GRID_DEFAULTS))["first_notice"]
        assert t["breaches"] == ["I2"]
        assert t["met"] == 3

    def test_planned_notice_lead_time(self) -> None:
        t = by_target(sla_report(PERIOD, incidents(), [], STATE_GRID_DEFAULTS))["planned_notice"]
        # P1 8 days ≥ 7 met; P2 2 days < 7 breached; P3 temporary 30 h ≥ 24 h met.
        assert (t["count"], t["met"], t["breaches"]) == (3, 2, ["P2"])
        assert t["p50_min"] == pytest.approx(2 * 24 * 60)  # median of 8 d, 2 d, 30 h

    def test_unacknowledged_past_deadline_is_breach(self) -> None:
        late = [outage("I9", "urban", 0, ack=None, arrived=None, restored=None, notice=None)]
        r = by_target(sla_report(PERIOD, late, [], STATE_GRID_DEFAULTS))
        assert r["acknowledge"]["breaches"] == ["I9"]
        assert r["acknowledge"]["p50_min"] is None
        assert r["restore_overall"]["breaches"] == ["I9"]
        assert r["restore_after_arrival"]["count"] == 0

    def test_by_area_rows(self) -> None:
        report = sla_report(PERIOD, incidents(), [], STATE_GRID_DEFAULTS)
        areas = {a["area"]: a for a in report["by_area"]}
        assert set(areas) == {"rural", "urban"}
        assert areas["urban"]["count"] + areas["rural"]["count"] == sum(
            t["count"] for t in report["targets"]
        )


class TestCustomerView:
    def test_share_restored_within_area_commitment(self) -> None:
        def cust(cid: str, area: str, start: float, end: float | None) -> InterruptionRecord:
            return InterruptionRecord("I1", cid, minutes(start), None if end is None else
                                      minutes(end), False, False, "F1", "S1", area)

        records = [
            cust("C1", "urban", 0, 200),      # 200 ≤ 225
            cust("C2", "urban", 0, 230),      # 230 > 225
            cust("C3", "rural", 0, 320),      # 320 ≤ 330
            cust("C4", "remote", 0, 500),     # 500 ≤ 480? no
            cust("C5", "urban", 1400, None),  # still out, 40 min: pending
            cust("C6", "urban", 0, None),     # still out for a day: not within
            cust("C7", "urban", 10, 12),      # momentary: not a sustained interruption
        ]
        view = sla_report(PERIOD, [], records, STATE_GRID_DEFAULTS)["customers"]
        assert view == {"affected": 5, "restored_within_commitment": 2,
                        "pct": pytest.approx(40.0), "pending": 1}
