from __future__ import annotations

import math
import random

import pytest

from services.incidents.domain.impact import (
    COMPONENTS,
    CalibrationSample,
    CustomerImpactInput,
    ImpactWeights,
    calibrate,
    customer_impact,
    features,
    incident_impact,
    survey_target,
)

DEFAULT = ImpactWeights()


def _commercial_example() -> CustomerImpactInput:
    return CustomerImpactInput(
        customer_id="C1",
        customer_class="commercial",
        critical=False,
        interruption_min=120,
        breach_min=30,
        notified_in_time=False,
        etr_error_min=45,
        etr_slips=2,
        prior_12m=1,
        calls=3,
    )


class TestCustomerImpact:
    def test_worked_example(self) -> None:
        # By hand: 10·ln(1 + 120/60) + 8·30/60 + 15·1 + 4·45/60 + 5·2 + 6·1 + 3·3
        #        = 10.98612 + 4 + 15 + 3 + 10 + 6 + 9 = 57.98612; commercial ×1.5 = 86.97918
        result = customer_impact(_commercial_example(), DEFAULT)
        assert result.customer_weight == 1.5
        assert result.impact == pytest.approx(1.5 * (10 * math.log(3) + 47))
        assert result.impact == pytest.approx(86.97918, abs=1e-5)
        assert result.components["duration"] == pytest.approx(15 * math.log(3))
        assert result.components["breach"] == pytest.approx(6.0)
        assert result.components["not_notified"] == pytest.approx(22.5)
        assert result.components["etr_error"] == pytest.approx(4.5)
        assert result.components["etr_slips"] == pytest.approx(15.0)
        assert result.components["prior_12m"] == pytest.approx(9.0)
        assert result.components["calls"] == pytest.approx(13.5)

    def test_critical_doubles_and_the_cap_scales_components(self) -> None:
        critical = CustomerImpactInput(
            customer_id="H1", customer_class="public", critical=True, interruption_min=600,
            breach_min=120, notified_in_time=False, calls=4,
        )  # fmt: skip
        result = customer_impact(critical, DEFAULT)
        assert result.customer_weight == pytest.approx(2.4)
        expected_raw = 2.4 * (10 * math.log(11) + 16 + 15 + 12)
        assert result.uncapped == pytest.approx(expected_raw)
        assert result.impact == 100.0
        assert sum(result.components.values()) == pytest.approx(100.0)
        share = result.components["calls"] / result.impact
        assert share == pytest.approx(2.4 * 12 / expected_raw)

    def test_nothing_happened_is_zero(self) -> None:
        calm = CustomerImpactInput("C2", "residential", False, interruption_min=0)
        result = customer_impact(calm, DEFAULT)
        assert result.impact == 0.0
        assert set(result.components) == set(COMPONENTS)


class TestIncidentImpact:
    def test_sum_mean_shares_and_customer_minutes(self) -> None:
        a = customer_impact(_commercial_example(), DEFAULT)
        b = customer_impact(CustomerImpactInput("C2", "residential", False, 60), DEFAULT)
        agg = incident_impact([a, b])
        assert agg.customers == 2
        assert agg.total == pytest.approx(a.impact + 10 * math.log(2))
        assert agg.mean == pytest.approx(agg.total / 2)
        assert agg.customer_minutes == 180
        assert sum(agg.component_shares.values()) == pytest.approx(1.0)
        duration = 15 * math.log(3) + 10 * math.log(2)
        assert agg.component_shares["duration"] == pytest.approx(duration / agg.total)

    def test_empty_incident(self) -> None:
        agg = incident_impact([])
        assert (agg.total, agg.mean, agg.customers) == (0.0, 0.0, 0)


class TestCalibration:
    def test_survey_target(self) -> None:
        assert [survey_target(s) for s in (5, 4, 3, 2, 1)] == [0, 25, 50, 75, 100]
        with pytest.raises(ValueError, match="1..5"):
            survey_target(0)

    def test_recovers_known_weights_from_synthetic_surveys(self) -> None:
        true = ImpactWeights(a=12, b=5, c=20, e=2, f=7, g=3, h=4)
        rng = random.Random(7)
        samples = []
        for i in range(6000):
            inp = CustomerImpactInput(
                customer_id=f"C{i}",
                customer_class=rng.choice(["residential", "public"]),
                critical=False,
                interruption_min=rng.uniform(0, 240),
                breach_min=rng.uniform(0, 60),
                notified_in_time=rng.random() < 0.5,
                etr_error_min=rng.uniform(0, 60),
                etr_slips=rng.randint(0, 2),
                prior_12m=rng.randint(0, 2),
                calls=rng.randint(0, 3),
            )
            y = customer_impact(inp, true).impact
            assert y < 100  # the generator stays under the cap, so no bias from it
            # Randomised rounding to a 1–5 score keeps the expected target equal to y.
            level = math.floor(y / 25)
            level += rng.random() < (y / 25 - level)
            samples.append(CalibrationSample(inp, score=5 - level))
        result = calibrate(samples, DEFAULT)
        fitted = result.weights.vector()
        for got, want in zip(fitted, true.vector(), strict=True):
            assert got == pytest.approx(want, abs=0.1 * want + 0.3)
        assert result.r2_before is not None
        assert result.r2_after is not None
        assert result.r2_after > result.r2_before
        assert result.samples == 6000
        assert result.weights.class_weights == DEFAULT.class_weights

    def test_weights_never_go_negative(self) -> None:
        # Calls anti-correlated with dissatisfaction: least squares would want h < 0.
        samples = [
            CalibrationSample(
                CustomerImpactInput(f"C{i}", "residential", False, 60 * (i % 4), calls=3 - i % 4),
                score=5 - i % 4,
            )
            for i in range(40)
        ]
        result = calibrate(samples, DEFAULT)
        assert all(w >= 0 for w in result.weights.vector())
        assert result.weights.h == 0.0

    def test_needs_samples(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            calibrate([], DEFAULT)

    def test_features_are_unweighted_terms(self) -> None:
        x = features(_commercial_example())
        assert x == pytest.approx((math.log(3), 0.5, 1.0, 0.75, 2.0, 1.0, 3.0))
