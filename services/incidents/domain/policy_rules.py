"""The validated policy (``services.common.policy``) turned into the incidents domain's values.

The policy model is shared runtime because notify reads it too; these conversions stay in
incidents so the shared module never imports service code.
"""

from __future__ import annotations

from datetime import timedelta

from services.common.policy import Policy
from services.common.topology.model import Area
from services.incidents.domain.impact import ImpactWeights
from services.incidents.domain.rules import CorrelationRules
from services.incidents.domain.sla_clock import SlaTargets
from services.incidents.domain.voltage import VoltageBand, band_for
from services.incidents.domain.voltage_monitor import VoltageRules


def correlation_rules(policy: Policy) -> CorrelationRules:
    """The correlator's rule numbers from the policy's ``correlation`` section."""
    c = policy.correlation
    return CorrelationRules(
        momentary_s=c.momentary_s,
        single_customer_dwell_s=c.single_customer_dwell_s,
        confirm_sustained_s=c.confirm_sustained_s,
        nested_check_s=c.nested_check_s,
        rollup_fraction=c.rollup_fraction,
        rollup_min=c.rollup_min,
    )


def sla_targets(policy: Policy, area: Area) -> SlaTargets:
    """The SLA targets of one area."""
    sla = policy.sla
    t = sla.areas.for_area(area)
    return SlaTargets(
        acknowledge=timedelta(minutes=t.acknowledge_min),
        on_site=timedelta(minutes=t.on_site_min),
        restore_after_arrival=timedelta(minutes=t.restore_after_arrival_min),
        restore_overall=timedelta(minutes=t.restore_overall_min),
        first_notice=timedelta(minutes=sla.first_notice_min),
        planned_notice=timedelta(days=sla.planned_notice_days),
        temporary_notice=timedelta(hours=sla.temporary_notice_h),
        at_risk_fraction=sla.at_risk_fraction,
    )


def impact_weights(policy: Policy) -> ImpactWeights:
    """The impact formula's weights from the policy's ``impact`` section."""
    i = policy.impact
    w = i.weights
    return ImpactWeights(
        a=w.a,
        b=w.b,
        c=w.c,
        e=w.e,
        f=w.f,
        g=w.g,
        h=w.h,
        class_weights=i.class_weights.model_dump(),
        critical_multiplier=i.critical_multiplier,
        cap=i.cap,
    )


def voltage_rules(policy: Policy) -> VoltageRules:
    """The voltage incident rule numbers from the policy's ``voltage`` section."""
    v = policy.voltage
    return VoltageRules(
        voltage_fraction=v.voltage_fraction,
        consecutive=v.consecutive,
        report_confirm_window=timedelta(seconds=v.report_confirm_window_s),
    )


def voltage_band(policy: Policy, nominal_v: float, phases: int) -> VoltageBand:
    """The band of the policy's voltage profile for a transformer."""
    return band_for(policy.voltage.profile, nominal_v, phases)
