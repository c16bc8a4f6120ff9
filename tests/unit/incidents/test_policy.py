from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.policy import (
    PolicyError,
    default_policy_text,
    load_policy,
    parse_policy,
    policy_from_mapping,
)
from services.incidents.domain.impact import ImpactWeights
from services.incidents.domain.policy_rules import (
    correlation_rules,
    impact_weights,
    sla_targets,
    voltage_band,
    voltage_rules,
)
from services.incidents.domain.rules import CorrelationRules


def _default_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(default_policy_text())
    return doc


class TestDefaultPolicy:
    def test_builtin_loads_with_the_design_defaults(self) -> None:
        p = load_policy(None)
        assert p.voltage.profile == "gbt12325"
        assert p.voltage.voltage_fraction == 0.3
        assert p.voltage.consecutive == 2
        assert p.sla.areas.urban.on_site_min == 45
        assert p.sla.areas.rural.restore_after_arrival_min == 240
        assert p.sla.areas.remote.restore_overall_min == 480
        assert p.sla.first_notice_min == 15
        assert p.notifications.retry.max_attempts == 8
        assert p.notifications.channel_order == ["sms", "wechat", "email", "webhook"]
        assert p.notifications.planned_notice_days == [7, 1]
        assert p.notifications.crew_on_site_opt_in_default is False
        assert p.reports.cemi_n == 3
        assert p.reports.reliability_target_pct.for_area("urban") == 99.9
        assert p.reports.voltage_target_pct.for_area("rural") == 97.5

    def test_restore_overall_is_on_site_plus_restore_after_arrival(self) -> None:
        areas = load_policy(None).sla.areas
        for area in ("urban", "rural", "remote"):
            t = areas.for_area(area)
            assert t.restore_overall_min == t.on_site_min + t.restore_after_arrival_min

    def test_a_file_path_loads_like_the_builtin(self, tmp_path: Path) -> None:
        f = tmp_path / "policy.yaml"
        f.write_text(default_policy_text(), encoding="utf-8")
        assert load_policy(f) == load_policy(None)

    def test_conversions_give_the_domain_defaults(self) -> None:
        p = load_policy(None)
        assert correlation_rules(p) == CorrelationRules()
        assert impact_weights(p) == ImpactWeights()
        rural = sla_targets(p, "rural")
        assert rural.on_site == timedelta(minutes=90)
        assert rural.restore_overall == timedelta(hours=5, minutes=30)
        assert rural.planned_notice == timedelta(days=7)
        assert rural.temporary_notice == timedelta(hours=24)
        assert voltage_rules(p).open_threshold(10) == 3
        assert voltage_band(p, 220, 1).low_v == 198.0


class TestInvalidPolicy:
    def test_every_error_is_listed_with_its_path(self) -> None:
        doc = _default_doc()
        doc["correlation"]["momentary_s"] = -1
        doc["correlation"]["surprise"] = 1
        doc["voltage"]["profile"] = "iec"
        doc["sla"]["at_risk_fraction"] = 1.5
        del doc["sla"]["areas"]["remote"]
        doc["impact"]["weights"]["a"] = "ten"
        doc["notifications"]["default_language"] = "fr"
        with pytest.raises(PolicyError) as info:
            policy_from_mapping(doc, source="bad.yaml")
        paths = [e.split(":", 1)[0] for e in info.value.errors]
        assert set(paths) == {
            "correlation.momentary_s",
            "correlation.surprise",
            "voltage.profile",
            "sla.at_risk_fraction",
            "sla.areas.remote",
            "impact.weights.a",
            "notifications",
        }
        assert "fr" in str(info.value)
        assert "bad.yaml" in str(info.value)
        assert info.value.code == "invalid_policy"

    def test_strings_are_not_coerced_to_numbers(self) -> None:
        doc = _default_doc()
        doc["sla"]["first_notice_min"] = "15"
        with pytest.raises(PolicyError) as info:
            policy_from_mapping(doc)
        assert [e.split(":", 1)[0] for e in info.value.errors] == ["sla.first_notice_min"]

    def test_channel_without_rate_limit_is_rejected(self) -> None:
        doc = _default_doc()
        del doc["notifications"]["rate_limits"]["email"]
        with pytest.raises(PolicyError, match="rate_limits lacks channel"):
            policy_from_mapping(doc)

    def test_retry_max_below_initial_is_rejected(self) -> None:
        doc = _default_doc()
        doc["notifications"]["retry"]["max_s"] = 10
        with pytest.raises(PolicyError, match="notifications.retry: .*max_s"):
            policy_from_mapping(doc)

    def test_yaml_syntax_error(self) -> None:
        with pytest.raises(PolicyError, match="<yaml>"):
            parse_policy("sla: [unclosed", source="x.yaml")

    def test_not_a_mapping(self) -> None:
        with pytest.raises(PolicyError, match="<root>"):
            parse_policy("- 1\n- 2\n")

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(PolicyError, match="cannot read"):
            load_policy(tmp_path / "absent.yaml")
