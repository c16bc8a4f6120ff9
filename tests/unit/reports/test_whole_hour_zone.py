"""``report_rollups.whole_hour_zone`` (remembered a year at a time) against the plain
day-by-day check it replaces, for zones with and without fractional offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from services.incidents.report_rollups import whole_hour_zone


def _day_by_day(tz: tzinfo, start: datetime, end: datetime) -> bool:
    t = start
    while True:
        if (t.astimezone(tz).utcoffset() or timedelta(0)).total_seconds() % 3600:
            return False
        if t >= end:
            return True
        t = min(t + timedelta(days=1), end)


ZONES = [
    ZoneInfo("Asia/Shanghai"),
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("Australia/Lord_Howe"),  # half-hour daylight saving shift
    timezone(timedelta(hours=5, minutes=45)),
    UTC,
]
RANGES = [
    (datetime(2021, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),
    (datetime(2026, 6, 1, 3, tzinfo=UTC), datetime(2026, 6, 5, 17, tzinfo=UTC)),
    (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)),
]


class TestWholeHourZone:
    @pytest.mark.parametrize("tz", ZONES, ids=str)
    def test_agrees_with_the_day_by_day_check(self, tz: tzinfo) -> None:
        for start, end in RANGES:
            assert whole_hour_zone(tz, start, end) == _day_by_day(tz, start, end)

    def test_half_hour_zones_are_not_whole_hour(self) -> None:
        start, end = RANGES[0]
        assert whole_hour_zone(ZoneInfo("Asia/Shanghai"), start, end)
        assert not whole_hour_zone(ZoneInfo("Asia/Kolkata"), start, end)
        assert not whole_hour_zone(ZoneInfo("Australia/Lord_Howe"), start, end)
