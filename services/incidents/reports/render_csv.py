"""CSV rendering of the reports: a header row, then one row per group or target.

Nested values are flattened (``excluding_med_saidi``, ``planned_customer_minutes``,
``sag_<class>``); lists are joined with ``;``; None is an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

RELIABILITY_INDICES: tuple[str, ...] = (
    "customer_interruptions", "customer_minutes", "customers_interrupted", "saifi", "saidi",
    "caidi", "caifi", "asai", "maifi", "maifi_e", "cemi", "rs1", "aihc1", "aitc1",
)
SLA_COLUMNS: tuple[str, ...] = (
    "target", "count", "met", "met_pct", "p50_min", "p90_min", "p99_min", "pending", "breaches",
)
VOLTAGE_COLUMNS: tuple[str, ...] = (
    "key", "monitoring_points", "minutes_monitored", "minutes_out_of_band", "qualified_rate",
    "target", "met",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(_cell(v) for v in value)
    return str(value)


def _write(header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in header])
    return buffer.getvalue()


def _period_cells(report: Mapping[str, Any]) -> dict[str, Any]:
    return {"period_start": report["period"]["start"], "period_end": report["period"]["end"]}


def reliability_csv(report: Mapping[str, Any]) -> str:
    """One row per group with every index, the planned figures and the excluding-MED ones."""
    header = ["period_start", "period_end", "key", "customers_served", *RELIABILITY_INDICES,
              "cemi_n", "target_rs1", "rs1_met", "planned_customer_interruptions",
              "planned_customer_minutes", "med_days", "med_threshold", "med_history_days",
              *(f"excluding_med_{name}" for name in RELIABILITY_INDICES)]
    rows = []
    for group in report["groups"]:
        row = {**_period_cells(report), **group}
        row.update({f"planned_{k}": v for k, v in group["planned"].items()})
        row.update({f"excluding_med_{k}": v for k, v in group["excluding_med"].items()})
        rows.append(row)
    return _write(header, rows)


def sla_csv(report: Mapping[str, Any]) -> str:
    """One row per target, then a ``customer_restore_commitment`` row for the customer view."""
    customers = report["customers"]
    rows = [*report["targets"], {
        "target": "customer_restore_commitment",
        "count": customers["affected"],
        "met": customers["restored_within_commitment"],
        "met_pct": customers["pct"],
        "pending": customers.get("pending"),
    }]
    return _write(SLA_COLUMNS, rows)


def voltage_csv(report: Mapping[str, Any]) -> str:
    """One row per group; sag and swell classes become ``sag_<class>`` / ``swell_<class>``."""
    sag_classes = sorted({c for g in report["groups"] for c in g["sags"]})
    swell_classes = sorted({c for g in report["groups"] for c in g["swells"]})
    header = [*VOLTAGE_COLUMNS, *(f"sag_{c}" for c in sag_classes),
              *(f"swell_{c}" for c in swell_classes)]
    rows = []
    for group in report["groups"]:
        row = dict(group)
        row.update({f"sag_{c}": group["sags"].get(c, 0) for c in sag_classes})
        row.update({f"swell_{c}": group["swells"].get(c, 0) for c in swell_classes})
        rows.append(row)
    return _write(header, rows)


def satisfaction_csv(report: Mapping[str, Any]) -> str:
    """``metric,value`` rows: the headline figures, then ``component:<name>`` shares."""
    rows: list[dict[str, Any]] = [
        {"metric": name, "value": report[name]}
        for name in ("incidents", "impact_total", "impact_mean", "first_notice_p90_min",
                     "etr_hit_rate", "calibration_r2")
    ]
    rows.append({"metric": "survey_responses", "value": report["survey"]["responses"]})
    rows.append({"metric": "survey_mean_score", "value": report["survey"]["mean_score"]})
    rows += [{"metric": f"component:{k}", "value": v} for k, v in report["components"].items()]
    return _write(("metric", "value"), rows)
