"""Survey samples for impact calibration and the stored calibration runs (DESIGN section 9).

A sample is a survey joined to the impact inputs stored for the same customer and incident
(``customer_impacts.inputs``); surveys without stored inputs (the incident's impact was
never recorded) are left out.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.policy import Policy
from services.incidents.domain import impact, policy_rules
from services.incidents.quality_orm import calibrations, customer_impacts, surveys

_INPUT_FIELDS = {f.name for f in fields(impact.CustomerImpactInput)}


async def survey_samples(session: AsyncSession) -> list[impact.CalibrationSample]:
    """Every survey with the impact inputs of the customer in that incident."""
    s, ci = surveys, customer_impacts
    rows = await session.execute(
        sa.select(s.c.score, ci.c.inputs)
        .join(ci, sa.and_(ci.c.incident_id == s.c.incident_id, ci.c.customer_id == s.c.customer_id))
        .order_by(s.c.occurred_at, s.c.event_id)
    )
    out: list[impact.CalibrationSample] = []
    for score, inputs in rows:
        kwargs = {k: v for k, v in dict(inputs).items() if k in _INPUT_FIELDS}
        out.append(impact.CalibrationSample(impact.CustomerImpactInput(**kwargs), int(score)))
    return out


async def run_calibration(
    session: AsyncSession, policy: Policy, now: datetime, *, apply: bool
) -> impact.CalibrationResult:
    """Fit the weights to the stored surveys and record the run (raises ValueError when
    there is no sample)."""
    samples = await survey_samples(session)
    if not samples:
        raise ValueError("no survey with recorded impact inputs to calibrate on")
    result = impact.calibrate(samples, policy_rules.impact_weights(policy))
    w = result.weights
    await session.execute(
        sa.insert(calibrations).values(
            at=now,
            samples=result.samples,
            r2_before=result.r2_before,
            r2_after=result.r2_after,
            weights={n: float(getattr(w, n)) for n in impact.WEIGHT_NAMES},
            applied=apply,
        )  # fmt: skip
    )
    return result


async def latest_r2(session: AsyncSession) -> float | None:
    """R² (after fitting) of the latest calibration run, for the satisfaction report."""
    c = calibrations
    value = await session.scalar(sa.select(c.c.r2_after).order_by(c.c.id.desc()).limit(1))
    return None if value is None else float(value)
