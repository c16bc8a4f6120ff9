"""The report parameters taken from the policy file (DESIGN section 8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.policy import Policy
from services.common.topology.model import Area
from services.incidents.reports.sla import SlaTargets

AREAS: tuple[Area, ...] = ("urban", "rural", "remote")


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Everything configurable about the reports, as the report functions take it."""

    sla: SlaTargets
    cemi_n: int
    med_beta_multiplier: float
    med_history_years: int
    rs1_targets: Mapping[str, float]
    voltage_targets: Mapping[str, float]

    @classmethod
    def from_policy(cls, policy: Policy) -> ReportSettings:
        """Read SLA targets, CEMI n, MED parameters and area targets from the policy."""
        areas = {area: policy.sla.areas.for_area(area) for area in AREAS}
        sla = SlaTargets(
            acknowledge_min=min(a.acknowledge_min for a in areas.values()),
            on_site_min={k: a.on_site_min for k, a in areas.items()},
            restore_after_arrival_min={k: a.restore_after_arrival_min for k, a in areas.items()},
            restore_overall_min={k: a.restore_overall_min for k, a in areas.items()},
            first_notice_min=policy.sla.first_notice_min,
            planned_notice_min=policy.sla.planned_notice_days * 24 * 60,
            temporary_notice_min=policy.sla.temporary_notice_h * 60,
            acknowledge_by_area={k: a.acknowledge_min for k, a in areas.items()},
        )
        rep = policy.reports
        return cls(
            sla=sla,
            cemi_n=rep.cemi_n,
            med_beta_multiplier=rep.med_beta_multiplier,
            med_history_years=rep.med_history_years,
            rs1_targets={k: rep.reliability_target_pct.for_area(k) for k in AREAS},
            voltage_targets={k: rep.voltage_target_pct.for_area(k) for k in AREAS},
        )
