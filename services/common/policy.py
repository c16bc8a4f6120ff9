"""The policy file of DESIGN section 8, validated: rule numbers, SLA targets, voltage profile,
notification rules, impact weights and report settings.

Shared runtime (not incidents code) because both incidents and notify read it and services
never import each other. The built-in default is ``policy.yaml`` next to this module;
``OUTAGEDESK_POLICY_FILE`` points at another. Validation is strict (no type coercion, no
unknown keys) and an invalid file raises :class:`PolicyError` listing every error with its
path, so a service stops at start-up with the whole list instead of the first problem.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.common.topology.model import Area

VoltageProfileName = Literal["gbt12325", "ansi_c84_1", "en50160"]
Channel = Literal["sms", "wechat", "email", "webhook"]

PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Percent = Annotated[float, Field(gt=0, le=100)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CorrelationPolicy(_Section):
    momentary_s: PosInt = 300
    single_customer_dwell_s: PosInt = 300
    confirm_sustained_s: PosInt = 300
    nested_check_s: PosInt = 600
    rollup_fraction: Fraction = 0.5
    rollup_min: PosInt = 2


class VoltagePolicy(_Section):
    profile: VoltageProfileName = "gbt12325"
    voltage_fraction: Fraction = 0.3
    consecutive: PosInt = 2
    report_confirm_window_s: PosInt = 3600


class AreaTargets(_Section):
    acknowledge_min: PosInt
    on_site_min: PosInt
    restore_after_arrival_min: PosInt
    restore_overall_min: PosInt


class SlaAreas(_Section):
    urban: AreaTargets
    rural: AreaTargets
    remote: AreaTargets

    def for_area(self, area: Area) -> AreaTargets:
        """The targets of one area."""
        targets: AreaTargets = getattr(self, area)
        return targets


class SlaPolicy(_Section):
    at_risk_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.8
    areas: SlaAreas
    first_notice_min: PosInt = 15
    planned_notice_days: PosInt = 7
    temporary_notice_h: PosInt = 24


class RetryPolicy(_Section):
    initial_s: PosInt = 60
    max_s: PosInt = 3600
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    max_attempts: PosInt = 8

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> Self:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be at least initial_s")
        return self


class TokenBucket(_Section):
    rate_per_s: PosFloat
    burst: PosInt


class NotificationPolicy(_Section):
    momentary_threshold_s: PosInt = 300
    etr_changed_min: PosInt = 30
    throttle_min: Annotated[int, Field(ge=0)] = 30
    retry: RetryPolicy = RetryPolicy()
    channel_order: list[Channel]
    rate_limits: dict[Channel, TokenBucket]
    survey_sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.1
    crew_on_site_opt_in_default: bool = False
    planned_notice_days: list[PosInt] = Field(default_factory=lambda: [7, 1])
    languages: list[str] = Field(default_factory=lambda: ["zh-CN", "en"])
    default_language: str = "zh-CN"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        if not self.channel_order:
            problems.append("channel_order must name at least one channel")
        if len(set(self.channel_order)) != len(self.channel_order):
            problems.append("channel_order has a duplicate channel")
        missing = [c for c in self.channel_order if c not in self.rate_limits]
        if missing:
            problems.append(f"rate_limits lacks channel(s) {', '.join(missing)}")
        if len(set(self.planned_notice_days)) != len(self.planned_notice_days):
            problems.append("planned_notice_days has a duplicate")
        if not self.languages:
            problems.append("languages must not be empty")
        if self.default_language not in self.languages:
            problems.append(f"default_language {self.default_language!r} is not in languages")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ImpactWeightsPolicy(_Section):
    a: NonNegFloat = 10.0
    b: NonNegFloat = 8.0
    c: NonNegFloat = 15.0
    e: NonNegFloat = 4.0
    f: NonNegFloat = 5.0
    g: NonNegFloat = 6.0
    h: NonNegFloat = 3.0


class ClassWeights(_Section):
    residential: PosFloat = 1.0
    commercial: PosFloat = 1.5
    industrial: PosFloat = 1.5
    public: PosFloat = 1.2


class ImpactPolicy(_Section):
    weights: ImpactWeightsPolicy = ImpactWeightsPolicy()
    class_weights: ClassWeights = ClassWeights()
    critical_multiplier: Annotated[float, Field(ge=1)] = 2.0
    cap: PosFloat = 100.0


class AreaPercent(_Section):
    urban: Percent
    rural: Percent
    remote: Percent

    def for_area(self, area: Area) -> float:
        """The value of one area."""
        value: float = getattr(self, area)
        return value


class ReportPolicy(_Section):
    cemi_n: PosInt = 3
    med_beta_multiplier: PosFloat = 2.5
    med_history_years: PosInt = 5
    reliability_target_pct: AreaPercent
    voltage_target_pct: AreaPercent


class Policy(_Section):
    version: Literal[1] = 1
    correlation: CorrelationPolicy = CorrelationPolicy()
    voltage: VoltagePolicy = VoltagePolicy()
    sla: SlaPolicy
    notifications: NotificationPolicy
    impact: ImpactPolicy = ImpactPolicy()
    reports: ReportPolicy


class PolicyError(Exception):
    """An invalid policy file; ``errors`` lists every problem as ``"<path>: <message>"``."""

    code = "invalid_policy"

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"invalid policy {source}:\n" + "\n".join(f"  {e}" for e in errors))


DEFAULT_POLICY_RESOURCE = "policy.yaml"


def default_policy_text() -> str:
    """The text of the built-in ``policy.yaml`` shipped with the package."""
    resource = importlib.resources.files("services.common").joinpath(DEFAULT_POLICY_RESOURCE)
    return resource.read_text(encoding="utf-8")


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file; ``None`` loads the built-in default.

    Raises :class:`PolicyError` with every error (YAML syntax, unknown keys, bad values,
    inconsistent sections), each prefixed with its dotted path.
    """
    if path is None:
        return parse_policy(default_policy_text(), source="<built-in policy.yaml>")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [f"<file>: cannot read: {exc}"]) from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML text (see :func:`load_policy`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(source, [f"<yaml>: {exc}"]) from exc
    return policy_from_mapping(data, source=source)


def policy_from_mapping(data: Any, source: str = "<policy>") -> Policy:
    """Validate an already-parsed policy document (see :func:`load_policy`)."""
    if not isinstance(data, dict):
        raise PolicyError(source, ["<root>: the policy must be a mapping"])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, [_format_error(err) for err in exc.errors()]) from exc


def _format_error(err: Any) -> str:
    path = ".".join(str(part) for part in err["loc"]) or "<root>"
    return f"{path}: {err['msg']}"
