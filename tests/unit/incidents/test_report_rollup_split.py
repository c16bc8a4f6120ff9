"""How a report period maps onto the monthly roll-ups: whole UTC months between the month
starts nearest to its bounds, plus and minus the raw ranges in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.incidents.report_rollups import (
    MonthSplit,
    ceil_hour,
    floor_hour,
    nearest_month,
    split_months,
    split_quarters,
    whole_hour_zone,
)

CST = timezone(timedelta(hours=8))
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


def _covers(split: MonthSplit, t: datetime) -> int:
    """How many times ``t`` is counted: inside the months, plus ranges, minus ranges."""
    n = 0
    if split.months is not None and split.months[0] <= t < split.months[1]:
        n += 1
    n += sum(1 for a, b in split.plus if a <= t < b)
    n -= sum(1 for a, b in split.minus if a <= t < b)
    return n


class TestSplitMonths:
    def test_local_month_is_one_utc_month_and_two_eight_hour_corrections(self) -> None:
        split = split_months(datetime(2026, 6, 1, tzinfo=CST), datetime(2026, 7, 1, tzinfo=CST))
        june, july = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
        assert split.months == (june, july)
        assert split.plus == [(june - timedelta(hours=8), june)]
        assert split.minus == [(july - timedelta(hours=8), july)]

    def test_a_short_period_is_read_raw(self) -> None:
        start, end = datetime(2026, 6, 9, 23, tzinfo=UTC), datetime(2026, 6, 11, tzinfo=UTC)
        assert split_months(start, end) == MonthSplit(None, [(start, end)])

    @given(moments, moments, moments)
    def test_every_instant_is_counted_once_inside_and_never_outside(
        self, a: datetime, b: datetime, t: datetime
    ) -> None:
        start, end = min(a, b), max(a, b)
        split = split_months(start, end)
        assert _covers(split, t) == (1 if start <= t < end else 0)
        if split.months is None:  # both bounds nearest one month start: under ~a month, raw
            assert end - start < timedelta(days=32)
        for lo, hi in split.plus + split.minus:
            # beside whole months, corrections never exceed half a month
            assert split.months is None or hi - lo <= timedelta(days=16)

    @given(moments)
    def test_nearest_month_and_hours(self, t: datetime) -> None:
        m = nearest_month(t)
        assert (m.day, m.hour, m.minute) == (1, 0, 0)
        assert abs(m - t) <= timedelta(days=16)
        assert floor_hour(t) <= t <= ceil_hour(t)
        assert ceil_hour(t) - floor_hour(t) in (timedelta(0), timedelta(hours=1))


class TestSplitQuarters:
    def test_a_july_to_june_year_is_four_quarters(self) -> None:
        jul25, jul26 = datetime(2025, 7, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
        assert split_quarters(jul25, jul26) == ((jul25, jul26), [])

    @given(moments, moments)
    def test_quarters_and_months_cover_the_months_once(self, a: datetime, b: datetime) -> None:
        m0, m1 = sorted((nearest_month(a), nearest_month(b)))
        quarters, months = split_quarters(m0, m1)
        ranges = ([quarters] if quarters else []) + months
        assert sum((hi - lo for lo, hi in ranges), timedelta(0)) == m1 - m0
        for lo, hi in months:
            assert m0 <= lo < hi <= m1
        if quarters is not None:
            assert quarters[0].month in (1, 4, 7, 10)
            assert quarters[1].month in (1, 4, 7, 10)


class TestWholeHourZone:
    def test_shanghai_and_new_york_qualify_india_does_not(self) -> None:
        start, end = datetime(2021, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
        assert whole_hour_zone(ZoneInfo("Asia/Shanghai"), start, end)
        assert whole_hour_zone(ZoneInfo("America/New_York"), start, end)
        assert not whole_hour_zone(ZoneInfo("Asia/Kolkata"), start, end)

    def test_a_half_hour_daylight_saving_shift_is_caught(self) -> None:
        # Lord Howe Island: +10:30 standard, +11:00 in summer.
        summer = datetime(2026, 1, 15, tzinfo=UTC)
        zone = ZoneInfo("Australia/Lord_Howe")
        assert whole_hour_zone(zone, summer, summer + timedelta(days=2))
        assert not whole_hour_zone(zone, summer, summer + timedelta(days=200))
