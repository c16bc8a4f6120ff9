"""How one interruption record counts: sustained or momentary, and its minutes.

IEEE 1366: an interruption of 5 minutes or less is momentary, a longer one sustained. An
interruption still open counts up to ``as_of`` (normally the end of the period), and is
only known to be sustained once it has lasted more than 5 minutes by then.
"""

from __future__ import annotations

from datetime import datetime

from services.incidents.reports.records import InterruptionRecord, Period

MOMENTARY_THRESHOLD_MIN = 5.0


def duration_min(record: InterruptionRecord, as_of: datetime) -> float:
    """Whole length of the interruption in minutes; an open one runs until ``as_of``."""
    end = record.end if record.end is not None else max(as_of, record.start)
    return max(0.0, (end - record.start).total_seconds() / 60.0)


def is_sustained(record: InterruptionRecord, as_of: datetime) -> bool:
    """Longer than the 5-minute momentary threshold and not flagged momentary."""
    return not record.momentary and duration_min(record, as_of) > MOMENTARY_THRESHOLD_MIN


def is_momentary(record: InterruptionRecord, as_of: datetime) -> bool:
    """Flagged momentary, or closed within the 5-minute threshold."""
    if record.momentary:
        return True
    return record.end is not None and duration_min(record, as_of) <= MOMENTARY_THRESHOLD_MIN


def clipped_minutes(record: InterruptionRecord, period: Period) -> float:
    """Minutes of the interruption that fall inside the period."""
    end = record.end if record.end is not None else period.end
    lo = max(record.start, period.start)
    hi = min(end, period.end)
    return max(0.0, (hi - lo).total_seconds() / 60.0)
