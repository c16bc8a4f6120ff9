"""Rendering a computed report as JSON, CSV or an HTML page (DESIGN section 11)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from markupsafe import Markup

from services.incidents.reports import charts
from services.incidents.reports.render_csv import (
    reliability_csv,
    satisfaction_csv,
    sla_csv,
    voltage_csv,
)

ReportKind = Literal["reliability", "sla", "voltage", "satisfaction"]
REPORT_KINDS: tuple[ReportKind, ...] = ("reliability", "sla", "voltage", "satisfaction")
FORMATS: tuple[str, ...] = ("json", "csv", "html")
MEDIA_TYPES: Mapping[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
TITLES: Mapping[str, str] = {
    "reliability": "Reliability 供电可靠性",
    "sla": "Service commitments (SLA)",
    "voltage": "Voltage quality 电压合格率",
    "satisfaction": "Customer satisfaction impact",
}
_CSV: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "reliability": reliability_csv,
    "sla": sla_csv,
    "voltage": voltage_csv,
    "satisfaction": satisfaction_csv,
}


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


@cache
def _environment() -> jinja2.Environment:
    # Built on first use, not at import, so importing the package does no file I/O.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    return env


def _charts(kind: str, report: Mapping[str, Any]) -> dict[str, Markup]:
    if kind == "reliability":
        points = [(d["date"], d["saidi"], d["med"]) for d in report["daily_saidi"]]
        trend = charts.trend_svg("saidi-trend", "Daily SAIDI (min) and MED threshold", points,
                                 report["med"]["threshold_min"], " min")
        return {"saidi_trend": Markup(trend)}  # noqa: S704 - built from escaped parts
    if kind == "sla":
        bars = [(a["area"], a["met_pct"]) for a in report["by_area"]]
        svg = charts.bars_svg("sla-by-area", "SLA met % by area", bars, unit="%", ceiling=100)
        return {"sla_by_area": Markup(svg)}  # noqa: S704
    if kind == "voltage":
        bars = [(f["key"], f["qualified_rate"]) for f in report["by_feeder"]]
        rates = [v for _, v in bars if v is not None]
        floor = max(0.0, min([*rates, 97.5]) - 2.0) // 1
        svg = charts.bars_svg("voltage-by-feeder", "Voltage qualified rate by feeder (%)", bars,
                              unit="%", floor=floor, ceiling=100,
                              targets=(("urban", 98.5), ("rural", 97.5)))
        return {"voltage_by_feeder": Markup(svg)}  # noqa: S704
    svg = charts.shares_svg("impact-components", "Impact component shares", report["components"])
    return {"impact_components": Markup(svg)}  # noqa: S704


def render_json(report: Mapping[str, Any]) -> str:
    """The report as a JSON document (UTF-8 text, non-ASCII kept)."""
    return json.dumps(report, ensure_ascii=False, indent=2)


def render_csv(kind: str, report: Mapping[str, Any]) -> str:
    """The report as CSV: a header row, then one row per group (or target)."""
    return _CSV[_check_kind(kind)](report)


def render_html(kind: str, report: Mapping[str, Any], *, title: str | None = None) -> str:
    """One self-contained, print-friendly HTML page with inline SVG charts."""
    checked = _check_kind(kind)
    template = _environment().get_template(f"{checked}.html.j2")
    return template.render(
        title=title or TITLES[checked], kind=checked, report=report, charts=_charts(checked, report)
    )


def render_report(kind: str, report: Mapping[str, Any], fmt: str) -> tuple[str, str]:
    """(body, media type) of the report in ``fmt`` (json, csv or html)."""
    if fmt == "json":
        return render_json(report), MEDIA_TYPES["json"]
    if fmt == "csv":
        return render_csv(kind, report), MEDIA_TYPES["csv"]
    if fmt == "html":
        return render_html(kind, report), MEDIA_TYPES["html"]
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def _check_kind(kind: str) -> ReportKind:
    for allowed in REPORT_KINDS:
        if kind == allowed:
            return allowed
    raise ValueError(f"report must be one of {', '.join(REPORT_KINDS)}, not {kind!r}")
