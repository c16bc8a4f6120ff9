"""Reports from the database: ``build_report`` reads the incidents and topology schemas
(PostgreSQL or SQLite) and hands the pure report functions of ``services.incidents.reports``
their input records (DESIGN section 11).

The reliability report sums in SQL (``report_reliability``) because a year holds millions of
customer interruptions; ``reliability_from_records`` is the same report through the pure
function on plain records, kept for small data and as the reference the SQL path is tested
against. The HTTP API (``api/routers/reports.py``) and ``outagedesk report`` both call
``build_report``.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.policy import Policy
from services.incidents.report_interruptions import load_reliability_inputs
from services.incidents.report_quality_data import (
    latest_calibration_r2,
    load_etr_errors,
    load_first_notices,
    load_impacts,
    load_surveys,
    load_voltage_inputs,
)
from services.incidents.report_reliability import reliability_report_sql, saidi_history
from services.incidents.report_sla_data import load_sla_inputs
from services.incidents.reports import (
    Period,
    reliability_report,
    satisfaction_report,
    sla_report,
    voltage_report,
)
from services.incidents.reports.aggregation import check_group_by
from services.incidents.reports.policy_settings import ReportSettings

ReportKind = Literal["reliability", "sla", "voltage", "satisfaction"]
DEFAULT_TIMEZONE = ZoneInfo("Asia/Shanghai")


async def build_report(
    session: AsyncSession,
    kind: ReportKind,
    start: datetime,
    end: datetime,
    group_by: str,
    policy: Policy,
    now: datetime | None = None,
    *,
    tz: tzinfo = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """The ``kind`` report for ``start`` ≤ t < ``end`` as a JSON-ready dict.

    ``group_by`` is all, area, feeder or substation (reliability and voltage; the SLA and
    satisfaction reports are system-wide). ``now`` bounds the SLA report's "deadline
    passed" judgement (default: the wall clock); ``tz`` sets local days (MEDs, daily
    SAIDI, voltage days). Raises ``ValueError`` for an unknown kind or group, naive or
    reversed bounds.
    """
    period = Period(start, end)
    check_group_by(group_by)
    settings = ReportSettings.from_policy(policy)
    if kind == "reliability":
        return await reliability_report_sql(
            session,
            period,
            group_by=group_by,
            tz=tz,
            cemi_n=settings.cemi_n,
            rs1_targets=settings.rs1_targets,
            med_beta_multiplier=settings.med_beta_multiplier,
            med_history_years=settings.med_history_years,
        )
    if kind == "sla":
        as_of = min(now or datetime.now(UTC), period.end)
        incidents, interrupted = await load_sla_inputs(session, period)
        return sla_report(period, incidents, interrupted, settings.sla, as_of=as_of)
    if kind == "voltage":
        minutes, events = await load_voltage_inputs(session, period, tz)
        return voltage_report(
            period, minutes, events, group_by=group_by, targets=settings.voltage_targets
        )
    if kind == "satisfaction":
        return satisfaction_report(
            period,
            await load_impacts(session, period),
            await load_first_notices(session, period),
            await load_etr_errors(session, period),
            await load_surveys(session, period),
            calibration_r2=await latest_calibration_r2(session),
        )
    raise ValueError(f"report must be reliability, sla, voltage or satisfaction, not {kind!r}")


async def reliability_from_records(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    group_by: str,
    policy: Policy,
    *,
    tz: tzinfo = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """The reliability report through the pure function on records loaded row by row.

    Same result as ``build_report(…, "reliability", …)``; every interruption row is read
    into Python, so use it for small databases and as the reference in tests.
    """
    period = Period(start, end)
    settings = ReportSettings.from_policy(policy)
    inputs = await load_reliability_inputs(session, period)
    history = await saidi_history(
        session, period, len(inputs.customers), tz, settings.med_history_years
    )
    return reliability_report(
        period,
        inputs.customers,
        inputs.interruptions,
        inputs.momentary_events,
        group_by=group_by,
        history=history,
        cemi_n=settings.cemi_n,
        tz=tz,
        rs1_targets=settings.rs1_targets,
        med_beta_multiplier=settings.med_beta_multiplier,
        med_history_years=settings.med_history_years,
    )
