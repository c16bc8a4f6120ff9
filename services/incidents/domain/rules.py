"""Correlation rule numbers (DESIGN section 5), built from ``policy.yaml`` by the policy module."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CorrelationRules:
    """Every number the outage correlator uses; the defaults are those of DESIGN section 5."""

    momentary_s: int = 300
    single_customer_dwell_s: int = 300
    confirm_sustained_s: int = 300
    nested_check_s: int = 600
    rollup_fraction: float = 0.5
    rollup_min: int = 2

    def rollup_threshold(self, n: int) -> int:
        """Children (meters, or devices and transformers) that must be out for a node of ``n``.

        ``max(1, min(n, max(rollup_min, ceil(rollup_fraction·n))))``: half the children, but at
        least two so one stray meter never fells a transformer, and never more than exist.
        """
        return max(1, min(n, max(self.rollup_min, math.ceil(self.rollup_fraction * n))))
