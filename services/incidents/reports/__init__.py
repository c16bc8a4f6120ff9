"""Management reports of DESIGN section 11: pure computations over input records, and
renderers to JSON, CSV and HTML. No database access here; an adapter builds the records.
"""

from services.incidents.reports.records import (
    CustomerRecord,
    EtrErrorRecord,
    FirstNoticeRecord,
    IncidentImpactRecord,
    IncidentSlaRecord,
    InterruptionRecord,
    MomentaryEvent,
    Period,
    SagSwellCount,
    SaidiHistory,
    SurveyRecord,
    VoltageMinutes,
)
from services.incidents.reports.reliability import reliability_report
from services.incidents.reports.render import (
    REPORT_KINDS,
    render_csv,
    render_html,
    render_json,
    render_report,
)
from services.incidents.reports.satisfaction import satisfaction_report
from services.incidents.reports.sla import STATE_GRID_DEFAULTS, SlaTargets, sla_report
from services.incidents.reports.voltage_report import voltage_report

__all__ = [
    "REPORT_KINDS",
    "STATE_GRID_DEFAULTS",
    "CustomerRecord",
    "EtrErrorRecord",
    "FirstNoticeRecord",
    "IncidentImpactRecord",
    "IncidentSlaRecord",
    "InterruptionRecord",
    "MomentaryEvent",
    "Period",
    "SagSwellCount",
    "SaidiHistory",
    "SlaTargets",
    "SurveyRecord",
    "VoltageMinutes",
    "reliability_report",
    "render_csv",
    "render_html",
    "render_json",
    "render_report",
    "satisfaction_report",
    "sla_report",
    "voltage_report",
]
