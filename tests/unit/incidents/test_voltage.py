from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.incidents.domain.voltage import (
    PROFILES,
    ComplianceMinutes,
    VoltageReading,
    band_for,
    classify_disturbance,
    classify_disturbance_v,
    compliance_minutes,
)
from services.incidents.domain.voltage_monitor import (
    LowVoltageReport,
    VoltageMonitor,
    VoltageOpened,
    VoltageResolved,
    VoltageRules,
    VoltageState,
)

T0 = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)
Q = timedelta(minutes=15)
BAND_220 = band_for("gbt12325", 220, 1)
METERS = [f"M{i:02d}" for i in range(10)]  # threshold max(1, ceil(0.3·10)) = 3


def _r(meter: str, slot: int, v: float, eid: str | None = None) -> VoltageReading:
    return VoltageReading(eid or f"{meter}-{slot}", meter, T0 + slot * Q, v)


def _monitor() -> VoltageMonitor:
    return VoltageMonitor("T1", METERS, BAND_220)


class TestBands:
    @pytest.mark.parametrize(
        ("profile", "nominal", "phases", "low", "high"),
        [
            ("gbt12325", 220, 1, 198.0, 235.4),
            ("gbt12325", 380, 3, 353.4, 406.6),
            ("gbt12325", 10_000, 3, 9_300.0, 10_700.0),
            ("gbt12325", 35_000, 3, 33_250.0, 36_750.0),
            ("ansi_c84_1", 120, 1, 114.0, 126.0),
            ("ansi_c84_1", 13_200, 3, 12_870.0, 13_860.0),
            ("en50160", 230, 1, 207.0, 253.0),
        ],
    )
    def test_limits(
        self, profile: str, nominal: float, phases: int, low: float, high: float
    ) -> None:
        band = band_for(profile, nominal, phases)  # type: ignore[arg-type]
        assert (band.low_v, band.high_v) == (low, high)

    def test_limits_are_inclusive(self) -> None:
        assert BAND_220.contains(198.0)
        assert BAND_220.contains(235.4)
        assert BAND_220.position(197.99) == "low"
        assert BAND_220.position(235.41) == "high"

    def test_rejects_nonsense(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            band_for("gbt12325", 0, 1)
        with pytest.raises(ValueError, match="phases"):
            band_for("gbt12325", 380, 2)

    @given(
        profile=st.sampled_from(PROFILES),
        nominal=st.sampled_from([120.0, 220.0, 230.0, 380.0, 400.0, 10_000.0, 35_000.0]),
        phases=st.sampled_from([1, 3]),
        v1=st.floats(min_value=0, max_value=50_000, allow_nan=False),
        v2=st.floats(min_value=0, max_value=50_000, allow_nan=False),
    )
    def test_classification_is_consistent_and_monotone(
        self, profile: str, nominal: float, phases: int, v1: float, v2: float
    ) -> None:
        band = band_for(profile, nominal, phases)  # type: ignore[arg-type]
        assert band.low_v < nominal < band.high_v
        assert 0.89 * nominal < band.low_v
        assert band.high_v < 1.11 * nominal
        for v in (v1, v2):
            assert band.contains(v) == (band.position(v) == "normal")
            assert band.contains(v) == (band.low_v <= v <= band.high_v)
        order = {"low": 0, "normal": 1, "high": 2}
        lo, hi = sorted((v1, v2))
        assert order[band.position(lo)] <= order[band.position(hi)]


class TestVoltageMonitorReadings:
    def test_threshold_of_meters_with_two_consecutive_out_of_band_readings(self) -> None:
        mon = _monitor()
        assert VoltageRules().open_threshold(10) == 3
        events = []
        for m in METERS[:2]:
            events += mon.add_reading(_r(m, 0, 190)) + mon.add_reading(_r(m, 1, 190))
        events += mon.add_reading(_r(METERS[2], 0, 190))
        assert events == []  # two meters confirmed, the third has only one reading
        (opened,) = mon.add_reading(_r(METERS[2], 1, 190))
        assert isinstance(opened, VoltageOpened)
        assert opened.occurred_at == T0 + Q
        assert opened.trigger == "readings"
        assert opened.meters == ("M00", "M01", "M02")
        assert mon.state is VoltageState.OPEN

    def test_resolves_after_two_in_band_readings_from_every_involved_meter(self) -> None:
        mon = _monitor()
        for m in METERS[:3]:
            mon.add_reading(_r(m, 0, 240))
            mon.add_reading(_r(m, 1, 240))
        assert mon.state is VoltageState.OPEN
        events = []
        for m in METERS[:2]:
            events += mon.add_reading(_r(m, 2, 220)) + mon.add_reading(_r(m, 3, 220))
        events += mon.add_reading(_r("M02", 2, 220)) + mon.add_reading(_r("M02", 3, 240))
        assert events == []  # M02 slipped out of band again
        events += mon.add_reading(_r("M02", 4, 221))
        assert events == []
        (resolved,) = mon.add_reading(_r("M02", 5, 221))
        assert isinstance(resolved, VoltageResolved)
        assert resolved.occurred_at == T0 + 5 * Q
        assert resolved.opened_at == T0 + Q
        assert mon.opened_at is None

    def test_out_of_order_and_duplicate_readings(self) -> None:
        mon = _monitor()
        for m in METERS[:3]:
            assert mon.add_reading(_r(m, 5, 190)) == []
        # The late, earlier readings complete each pair; the open time is event time.
        mon.add_reading(_r("M00", 4, 190))
        mon.add_reading(_r("M00", 4, 190))  # duplicate event_id: ignored
        mon.add_reading(_r("M01", 4, 190))
        (opened,) = mon.add_reading(_r("M02", 4, 190))
        assert isinstance(opened, VoltageOpened)
        assert opened.occurred_at == T0 + 5 * Q
        assert mon.add_reading(_r("M02", 4, 190)) == []

    def test_a_late_in_band_reading_between_two_lows_breaks_the_run(self) -> None:
        mon = VoltageMonitor("T1", ["M00"], BAND_220)
        mon.add_reading(_r("M00", 0, 190))
        mon.add_reading(_r("M00", 2, 190))
        assert mon.state is VoltageState.OPEN  # opened: slots 0 and 2 were consecutive
        mon2 = VoltageMonitor("T1", ["M00"], BAND_220)
        mon2.add_reading(_r("M00", 0, 190))
        mon2.add_reading(_r("M00", 1, 220))
        assert mon2.add_reading(_r("M00", 2, 190)) == []

    def test_resolved_readings_do_not_reopen_but_new_ones_do(self) -> None:
        mon = VoltageMonitor("T1", ["M00"], BAND_220)
        for slot, v in enumerate([190, 190, 220, 220]):
            mon.add_reading(_r("M00", slot, v))
        assert mon.state is VoltageState.NORMAL
        assert mon.add_reading(_r("M00", 1, 190, eid="late")) == []  # late, before resolution
        mon.add_reading(_r("M00", 4, 190))
        (opened,) = mon.add_reading(_r("M00", 5, 190))
        assert isinstance(opened, VoltageOpened)
        assert opened.occurred_at == T0 + 5 * Q


    def test_a_clone_goes_its_own_way(self) -> None:
        """A transaction's clone takes readings that open an incident; the original (the
        committed state) neither sees them nor opens, and then behaves as a fresh copy."""
        mon = _monitor()
        for m in METERS[:3]:
            mon.add_reading(_r(m, 0, 190))
        twin = mon.clone()
        events = [e for m in METERS[:3] for e in twin.add_reading(_r(m, 1, 190))]
        assert [type(e) for e in events] == [VoltageOpened]
        assert twin.state is VoltageState.OPEN
        assert mon.state is VoltageState.NORMAL
        assert mon.involved_meters == frozenset()
        again = [e for m in METERS[:3] for e in mon.add_reading(_r(m, 1, 190))]
        assert again == events  # the original, fed the same, opens the same incident


class TestVoltageMonitorReports:
    def test_low_voltage_report_confirmed_by_one_reading(self) -> None:
        mon = _monitor()
        report = LowVoltageReport("r-1", "C07", "M07", T0 + 10 * timedelta(minutes=1))
        assert mon.add_report(report) == []
        assert mon.add_reading(_r("M03", 1, 190)) == []  # another meter does not confirm
        (opened,) = mon.add_reading(_r("M07", 1, 190))
        assert isinstance(opened, VoltageOpened)
        assert opened.trigger == "report"
        assert opened.occurred_at == T0 + Q
        assert opened.meters == ("M07",)
        assert opened.reporting_customers == ("C07",)
        # It resolves on the reporter's meter alone.
        mon.add_reading(_r("M07", 2, 220))
        (resolved,) = mon.add_reading(_r("M07", 3, 220))
        assert isinstance(resolved, VoltageResolved)

    def test_reading_before_the_report_confirms_it_at_report_time(self) -> None:
        mon = _monitor()
        mon.add_reading(_r("M07", 0, 190))
        (opened,) = mon.add_report(LowVoltageReport("r-1", "C07", "M07", T0 + Q))
        assert opened.occurred_at == T0 + Q

    def test_reading_outside_the_window_does_not_confirm(self) -> None:
        mon = _monitor()
        mon.add_report(LowVoltageReport("r-1", "C07", "M07", T0))
        assert mon.add_reading(_r("M07", 5, 190)) == []  # 75 min later
        assert mon.add_reading(_r("M07", 4, 220)) == []  # in band
        assert mon.state is VoltageState.NORMAL

    def test_reports_while_open_are_attached_for_acknowledgement(self) -> None:
        mon = VoltageMonitor("T1", ["M00", "M01"], BAND_220)
        mon.add_reading(_r("M00", 0, 190))
        mon.add_reading(_r("M00", 1, 190))
        assert mon.add_report(LowVoltageReport("r-2", "C01", "M01", T0 + 2 * Q)) == []
        assert mon.reporting_customers == {"C01"}


class TestComplianceMinutes:
    def test_minutes_out_of_band_and_qualified_rate(self) -> None:
        readings = [_r("M00", s, v) for s, v in enumerate([220, 190, 221, 222], start=1)]
        readings.append(readings[1])  # duplicate
        result = compliance_minutes(readings, BAND_220)
        assert result == ComplianceMinutes(60.0, 15.0)
        assert result.qualified_rate == 75.0

    def test_clipped_to_period_and_overlaps_counted_once(self) -> None:
        r1 = _r("M00", 2, 190)  # covers 15:00-30:00 (minutes after T0)
        r2 = VoltageReading("x", "M00", T0 + 2 * Q + timedelta(minutes=5), 220)  # 20-35, overlap
        result = compliance_minutes([r1, r2], BAND_220, start=T0 + Q + timedelta(minutes=5))
        assert result == ComplianceMinutes(10.0 + 5.0, 10.0)  # r1 20-30 out, r2 30-35 in

    def test_nothing_monitored_has_no_rate(self) -> None:
        assert ComplianceMinutes(0.0, 0.0).qualified_rate is None
        total = ComplianceMinutes(60, 6) + ComplianceMinutes(40, 4)
        assert total.qualified_rate == pytest.approx(90.0)


class TestIeee1159:
    @pytest.mark.parametrize(
        ("pu", "ms", "expected"),
        [
            (0.5, 9.99, None),
            (0.5, 10, "instantaneous_sag"),
            (0.5, 600, "instantaneous_sag"),
            (0.5, 600.01, "momentary_sag"),
            (0.5, 3000, "momentary_sag"),
            (0.5, 3000.01, "temporary_sag"),
            (0.5, 60_000, "temporary_sag"),
            (0.5, 60_001, "undervoltage"),
            (0.1, 100, "instantaneous_sag"),
            (0.0999, 100, "momentary_interruption"),
            (0.0, 3000, "momentary_interruption"),
            (0.0, 3001, "temporary_interruption"),
            (0.0, 60_001, "sustained_interruption"),
            (0.9, 100, None),
            (1.1, 100, None),
            (1.1001, 100, "instantaneous_swell"),
            (1.8, 2000, "momentary_swell"),
            (1.8001, 100, None),
            (1.15, 30_000, "temporary_swell"),
            (1.15, 90_000, "overvoltage"),
        ],
    )
    def test_classes_at_boundaries(self, pu: float, ms: float, expected: str | None) -> None:
        assert classify_disturbance(pu, ms) == expected

    def test_volts_against_nominal_and_60_hz(self) -> None:
        assert classify_disturbance_v(198.0, 220, 100) is None  # exactly 0.9 pu
        assert classify_disturbance_v(197.9, 220, 100) == "instantaneous_sag"
        assert classify_disturbance_v(250.0, 220, 80) == "instantaneous_swell"
        assert classify_disturbance(0.5, 550, frequency_hz=60) == "momentary_sag"  # > 30 cycles
