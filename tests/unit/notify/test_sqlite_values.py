"""The plain-SQL statements on SQLite must store and read times exactly as SQLAlchemy's
SQLite ``DateTime`` does: rows written one way are compared and ordered with rows written
the other (``next_attempt_at <= ?``, the ``claimed_at`` guard)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from services.notify.repository import from_db, to_db
from services.notify.sqlite_queue import (
    ParsedTimes,
    UtcTexts,
    dt,
    marks,
    parse_dt,
    utc_dt,
)

SHANGHAI = timezone(timedelta(hours=8))
TIMES = [
    datetime(2026, 7, 14, 7, 0, 1, tzinfo=SHANGHAI),
    datetime(2026, 7, 14, 7, 0, 1, 250, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5),
    datetime(999, 1, 1, tzinfo=UTC),
]


def _sqlalchemy_stores(value: datetime | None) -> object:
    process = DateTime(timezone=True).dialect_impl(sqlite.dialect()).bind_processor(
        sqlite.dialect()
    )
    assert process is not None
    return process(value)


def _sqlalchemy_reads(text: str) -> object:
    process = DateTime(timezone=True).dialect_impl(sqlite.dialect()).result_processor(
        sqlite.dialect(), None
    )
    assert process is not None
    return process(text)


class TestSqliteTimes:
    def test_stored_text_is_sqlalchemys(self) -> None:
        for value in TIMES:
            assert dt(value) == _sqlalchemy_stores(value)
            assert utc_dt(value) == _sqlalchemy_stores(to_db(value))
        assert dt(None) is None
        assert utc_dt(None) is None

    def test_read_back_as_the_repository_reads(self) -> None:
        for value in TIMES:
            text = utc_dt(value)
            assert text is not None
            assert parse_dt(text) == from_db(_sqlalchemy_reads(text))  # type: ignore[arg-type]
        assert parse_dt(None) is None

    def test_placeholders(self) -> None:
        assert marks(3) == "?, ?, ?"
        assert marks(2, "(?, ?)") == "(?, ?), (?, ?)"

    def test_memoised_conversions_equal_the_plain_ones(self) -> None:
        texts, times = UtcTexts(), ParsedTimes()
        same_instant = [TIMES[0], TIMES[0].astimezone(UTC)]  # equal keys, other zones
        for value in [*TIMES, *same_instant, None, TIMES[0]]:
            assert texts[value] == utc_dt(value)
            assert times[texts[value]] == parse_dt(utc_dt(value))
        assert len(texts) == len(TIMES) + 1  # one conversion per instant (and None)
