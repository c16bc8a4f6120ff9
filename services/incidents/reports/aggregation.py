"""Shared pieces of the reports: group keys and percentiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.incidents.reports.records import GROUP_BYS, GroupBy

ALL_KEY = "all"
UNKNOWN_KEY = "unknown"


def check_group_by(group_by: str) -> GroupBy:
    """Validate a ``group_by`` value (all, area, feeder, substation)."""
    for allowed in GROUP_BYS:
        if group_by == allowed:
            return allowed
    raise ValueError(f"group_by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}")


def group_key(
    group_by: GroupBy, *, feeder_id: str | None, substation: str | None, area: str | None
) -> str:
    """The key of the group a record belongs to under ``group_by``."""
    if group_by == "all":
        return ALL_KEY
    value = {"area": area, "feeder": feeder_id, "substation": substation}[group_by]
    return value or UNKNOWN_KEY


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100, linear interpolation as numpy); None when empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero."""
    if denominator == 0:
        return None
    return numerator / denominator
