"""Reliability indices against worked examples computed by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.incidents.reports import (
    CustomerRecord,
    InterruptionRecord,
    MomentaryEvent,
    Period,
    reliability_report,
)

CST = timezone(timedelta(hours=8))
DAY = Period(datetime(2026, 7, 1, tzinfo=CST), datetime(2026, 7, 2, tzinfo=CST))
FEEDER = {"F1": ("S1", "urban"), "F2": ("S2", "rural")}


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    """A time on 1 July 2026 (day=0 is 30 June)."""
    return DAY.start + timedelta(days=day - 1, hours=hour, minutes=minute)


def customers() -> list[CustomerRecord]:
    out = []
    for i in range(1, 11):
        feeder = "F1" if i <= 6 else "F2"
        sub, area = FEEDER[feeder]
        out.append(CustomerRecord(f"C{i}", feeder, sub, area))
    return out


def interruption(
    customer: str, start: datetime, end: datetime | None, *, incident: str = "I1",
    planned: bool = False, momentary: bool = False,
) -> InterruptionRecord:
    feeder = "F1" if int(customer[1:]) <= 6 else "F2"
    sub, area = FEEDER[feeder]
    return InterruptionRecord(incident, customer, start, end, planned, momentary, feeder, sub, area)


def interruptions() -> list[InterruptionRecord]:
    return [
        # C1 interrupted twice: 60 and 30 minutes.
        interruption("C1", at(8), at(9), incident="I1"),
        interruption("C1", at(14), at(14, 30), incident="I4"),
        # Nested outage: C2 restored with the parent at 11:00; C3 stayed out in the nested
        # incident until 12:00 — one interruption for C3, not two.
        interruption("C2", at(10), at(11), incident="I2"),
        interruption("C3", at(10), at(12), incident="I3"),
        # Momentaries: flagged, and a 4-minute one that is momentary by duration.
        interruption("C4", at(9), at(9, 3), incident="M1", momentary=True),
        interruption("C5", at(9), at(9, 4), incident="M1"),
        # Planned 4 hours.
        interruption("C6", at(1), at(5), incident="P1", planned=True),
        interruption("C7", at(16), at(17, 30), incident="I5"),
        # Started the evening before the period: minutes clipped, not counted as an
        # interruption of this period.
        interruption("C8", at(23, day=0), at(1), incident="I0"),
    ]


def momentary_events() -> list[MomentaryEvent]:
    return [
        MomentaryEvent("E1", "C4", at(9), "F1", "S1", "urban"),
        MomentaryEvent("E1", "C5", at(9), "F1", "S1", "urban"),
        MomentaryEvent("E2", "C4", at(9, 30), "F1", "S1", "urban"),
        MomentaryEvent("E2", "C4", at(9, 30), "F1", "S1", "urban"),  # duplicate row
    ]


class TestSystemIndices:
    def test_worked_example(self) -> None:
        report = reliability_report(
            DAY, customers(), interruptions(), momentary_events(), tz=CST
        )
        (g,) = report["groups"]
        # Sustained unplanned starting in the period: C1 ×2, C2, C3, C7.
        assert g["key"] == "all"
        assert g["customers_served"] == 10
        assert g["customer_interruptions"] == 5
        # 60 + 30 + 60 + 120 + 90 + 60 (C8 clipped at midnight) minutes.
        assert g["customer_minutes"] == pytest.approx(420)
        assert g["saifi"] == pytest.approx(0.5)
        assert g["saidi"] == pytest.approx(42.0)
        assert g["caidi"] == pytest.approx(84.0)
        assert g["caifi"] == pytest.approx(5 / 4)
        assert g["asai"] == pytest.approx(1 - 420 / (10 * 1440))
        assert g["maifi"] == pytest.approx(0.2)
        assert g["maifi_e"] == pytest.approx(0.3)
        assert g["cemi"] == 0.0
        # DL/T 836 counts planned too: (420 + 240) min / 60 / 10 customers.
        assert g["aihc1"] == pytest.approx(1.1)
        assert g["rs1"] == pytest.approx((1 - 1.1 / 24) * 100)
        assert g["aitc1"] == pytest.approx(0.6)
        assert g["planned"] == {
            "customer_interruptions": 1,
            "customer_minutes": pytest.approx(240),
            "saifi": pytest.approx(0.1),
            "saidi": pytest.approx(24.0),
        }

    def test_cemi_threshold_is_more_than_n(self) -> None:
        report = reliability_report(DAY, customers(), interruptions(), cemi_n=1, tz=CST)
        assert report["groups"][0]["cemi"] == pytest.approx(0.1)  # only C1 had 2 > 1

    def test_nested_outage_customer_counted_once(self) -> None:
        report = reliability_report(DAY, customers(), interruptions(), tz=CST)
        only_nested = [r for r in interruptions() if r.customer_id == "C3"]
        nested = reliability_report(DAY, customers(), only_nested, tz=CST)["groups"][0]
        assert nested["customer_interruptions"] == 1
        assert nested["customer_minutes"] == pytest.approx(120)
        assert report["groups"][0]["customers_interrupted"] == 4

    def test_open_interruption_runs_to_period_end(self) -> None:
        still_out = [interruption("C1", at(23), None)]
        g = reliability_report(DAY, customers(), still_out, tz=CST)["groups"][0]
        assert g["customer_interruptions"] == 1
        assert g["customer_minutes"] == pytest.approx(60)

    def test_no_customers_gives_null_indices(self) -> None:
        g = reliability_report(DAY, [], [], tz=CST)["groups"]
        assert g == []


class TestGrouping:
    def test_by_feeder(self) -> None:
        report = reliability_report(
            DAY, customers(), interruptions(), momentary_events(), group_by="feeder", tz=CST
        )
        by_key = {g["key"]: g for g in report["groups"]}
        assert list(by_key) == ["F1", "F2"]
        f1, f2 = by_key["F1"], by_key["F2"]
        assert f1["customers_served"] == 6
        assert f1["customer_interruptions"] == 4
        assert f1["customer_minutes"] == pytest.approx(270)
        assert f1["saidi"] == pytest.approx(45.0)
        assert f1["maifi_e"] == pytest.approx(3 / 6)
        assert f2["customer_interruptions"] == 1
        assert f2["customer_minutes"] == pytest.approx(150)
        assert f1["target_rs1"] == 99.9
        assert f2["target_rs1"] == 99.8

    def test_by_area_sums_to_system(self) -> None:
        report = reliability_report(DAY, customers(), interruptions(), group_by="area", tz=CST)
        total = sum(g["customer_minutes"] for g in report["groups"])
        assert total == pytest.approx(420)
        assert [g["key"] for g in report["groups"]] == ["rural", "urban"]

    def test_unknown_group_by_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="group_by"):
            reliability_report(DAY, customers(), [], group_by="county")

    def test_binding_keys_present(self) -> None:
        report = reliability_report(DAY, customers(), interruptions(), tz=CST)
        assert set(report) >= {"period", "groups"}
        assert report["period"] == {"start": DAY.start.isoformat(), "end": DAY.end.isoformat()}
        binding = {"key", "customers_served", "customer_interruptions", "customer_minutes",
                   "saifi", "saidi", "caidi", "caifi", "asai", "maifi", "maifi_e", "cemi",
                   "rs1", "aihc1", "med_days", "excluding_med"}
        assert binding <= set(report["groups"][0])
