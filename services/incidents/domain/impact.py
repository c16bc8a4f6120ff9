"""Satisfaction impact (DESIGN section 9): per customer, per incident, and weight calibration.

impact_c = w_class(c) · ( a·ln(1 + d/60) + b·breach/60 + c·[not notified within target]
           + e·|restored − last ETR|/60 + f·etr_slips + g·prior_12m + h·calls ), capped.

Components are recorded after the class weight and, when the cap bites, scaled down in
proportion, so a customer's components always add up to their impact and an incident's
component shares describe what was actually counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

COMPONENTS: tuple[str, ...] = (
    "duration",
    "breach",
    "not_notified",
    "etr_error",
    "etr_slips",
    "prior_12m",
    "calls",
)
# Weight letter of each component, in COMPONENTS order (d is the duration, not a weight).
WEIGHT_NAMES: tuple[str, ...] = ("a", "b", "c", "e", "f", "g", "h")

DEFAULT_CLASS_WEIGHTS: Mapping[str, float] = {
    "residential": 1.0,
    "commercial": 1.5,
    "industrial": 1.5,
    "public": 1.2,
}


@dataclass(frozen=True, slots=True)
class ImpactWeights:
    """Formula weights (build from the policy with ``policy_rules.impact_weights``)."""

    a: float = 10.0
    b: float = 8.0
    c: float = 15.0
    e: float = 4.0
    f: float = 5.0
    g: float = 6.0
    h: float = 3.0
    class_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CLASS_WEIGHTS))
    critical_multiplier: float = 2.0
    cap: float = 100.0

    def vector(self) -> tuple[float, ...]:
        """The weights a..h in :data:`COMPONENTS` order."""
        return tuple(float(getattr(self, name)) for name in WEIGHT_NAMES)

    def customer_weight(self, customer_class: str, critical: bool) -> float:
        """w_class(c): the class weight, multiplied when the customer is critical."""
        weight = self.class_weights[customer_class]
        return weight * self.critical_multiplier if critical else weight


@dataclass(frozen=True, slots=True)
class CustomerImpactInput:
    """What the formula needs about one customer in one incident."""

    customer_id: str
    customer_class: str
    critical: bool
    interruption_min: float  # d
    breach_min: float = 0.0  # minutes past the restoration target
    notified_in_time: bool = True
    etr_error_min: float = 0.0  # |restored − ETR in force at restoration|; 0 when no ETR
    etr_slips: int = 0
    prior_12m: int = 0
    calls: int = 0


@dataclass(frozen=True, slots=True)
class CustomerImpact:
    """One customer's impact with its components (class-weighted, cap-scaled)."""

    customer_id: str
    impact: float
    uncapped: float
    customer_weight: float
    interruption_min: float
    components: dict[str, float]


@dataclass(frozen=True, slots=True)
class IncidentImpact:
    """The incident's record: Σ impact, mean per affected customer, shares, customer-minutes."""

    customers: int
    total: float
    mean: float
    customer_minutes: float
    component_shares: dict[str, float]


@dataclass(frozen=True, slots=True)
class CalibrationSample:
    """A survey answer (score 1–5) with the impact inputs of the customer who gave it."""

    inputs: CustomerImpactInput
    score: int


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Fitted weights and R² of the old and new weights on the same samples."""

    weights: ImpactWeights
    r2_before: float | None  # None when every sample has the same target (R² undefined)
    r2_after: float | None
    samples: int


def features(inp: CustomerImpactInput) -> tuple[float, ...]:
    """The unweighted formula terms, in :data:`COMPONENTS` order (before the class weight)."""
    return (
        math.log1p(max(inp.interruption_min, 0.0) / 60.0),
        max(inp.breach_min, 0.0) / 60.0,
        0.0 if inp.notified_in_time else 1.0,
        abs(inp.etr_error_min) / 60.0,
        float(inp.etr_slips),
        float(inp.prior_12m),
        float(inp.calls),
    )


def customer_impact(
    inp: CustomerImpactInput, weights: ImpactWeights, vector: tuple[float, ...] | None = None
) -> CustomerImpact:
    """impact_c of one customer with its components (``vector``: ``weights.vector()``,
    passed by callers that score many customers)."""
    w_c = weights.customer_weight(inp.customer_class, inp.critical)
    vec = weights.vector() if vector is None else vector
    raw = [w_c * w * x for w, x in zip(vec, features(inp), strict=True)]
    uncapped = sum(raw)
    impact = min(uncapped, weights.cap)
    scale = impact / uncapped if uncapped > 0 else 0.0
    return CustomerImpact(
        customer_id=inp.customer_id,
        impact=impact,
        uncapped=uncapped,
        customer_weight=w_c,
        interruption_min=inp.interruption_min,
        components={name: v * scale for name, v in zip(COMPONENTS, raw, strict=True)},
    )


def incident_impact(impacts: Sequence[CustomerImpact]) -> IncidentImpact:
    """Aggregate the customers of one incident; shares sum to 1 (all 0 when Σ impact is 0)."""
    total = sum(i.impact for i in impacts)
    sums = {name: sum(i.components[name] for i in impacts) for name in COMPONENTS}
    return IncidentImpact(
        customers=len(impacts),
        total=total,
        mean=total / len(impacts) if impacts else 0.0,
        customer_minutes=sum(i.interruption_min for i in impacts),
        component_shares={n: (v / total if total > 0 else 0.0) for n, v in sums.items()},
    )


def survey_target(score: int) -> float:
    """The impact a survey score stands for: 100·(5 − score)/4 (5 → 0, 1 → 100)."""
    if not 1 <= score <= 5:
        raise ValueError(f"survey score must be 1..5, not {score}")
    return 100.0 * (5 - score) / 4.0


def calibrate(samples: Sequence[CalibrationSample], current: ImpactWeights) -> CalibrationResult:
    """Fit a..h by non-negative least squares on the survey targets; report R² before/after.

    Class weights, the critical multiplier and the cap are kept; predictions for R² are
    capped like real impacts.
    """
    if not samples:
        raise ValueError("calibration needs at least one survey sample")
    # Imported here: scipy.optimize costs about a second of start-up for every process that
    # imports this module (the incidents service, the demo), and only calibration needs it.
    import numpy as np
    from scipy.optimize import nnls

    x = np.array(
        [
            [
                current.customer_weight(s.inputs.customer_class, s.inputs.critical) * v
                for v in features(s.inputs)
            ]
            for s in samples
        ],
        dtype=float,
    )
    y = np.array([survey_target(s.score) for s in samples], dtype=float)
    fitted, _ = nnls(x, y)
    a, b, c, e, f, g, h = (float(w) for w in fitted)
    new = replace(current, a=a, b=b, c=c, e=e, f=f, g=g, h=h)
    before = np.minimum(x @ np.array(current.vector()), current.cap)
    after = np.minimum(x @ fitted, current.cap)
    return CalibrationResult(new, _r2(y, before), _r2(y, after), len(samples))


def _r2(y: np.ndarray, predicted: np.ndarray) -> float | None:
    import numpy as np

    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return None
    return 1.0 - float(np.sum((y - predicted) ** 2)) / ss_tot
