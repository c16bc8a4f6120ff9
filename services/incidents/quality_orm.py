"""Tables of schema ``incidents`` for voltage quality, customer reports, surveys, the SLA
clock's deadlines, first notices and satisfaction impact (migration ``incidents_0003``).

Declared on the same ``MetaData`` as :mod:`services.incidents.orm`. Report adapters read
these tables directly; every column is documented where it is not obvious.

Idempotency: rows that come from signals are unique by the source ``event_id``; the daily
roll-ups (``voltage_minutes``, ``power_quality_counts``) are only added to when the source
row was newly inserted, so a re-delivered signal changes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.incidents.orm import AUTO_ID, JSON, TS, metadata

# One row per voltage interval summary (meter event type ``voltage``).
voltage_readings = sa.Table(
    "voltage_readings",
    metadata,
    sa.Column("event_id", sa.Text(), primary_key=True),
    sa.Column("meter_id", sa.Text(), nullable=False),
    sa.Column("transformer_id", sa.Text(), nullable=False),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("occurred_at", TS, nullable=False),  # end of the interval it covers
    sa.Column("interval_s", sa.Integer(), nullable=False),
    sa.Column("v_avg", sa.Float(), nullable=False),
    sa.Column("v_min", sa.Float()),
    sa.Column("v_max", sa.Float()),
    sa.Column("in_band", sa.Boolean(), nullable=False),  # v_avg inside the policy profile
    sa.Index(None, "transformer_id", "occurred_at"),
    sa.Index(None, "meter_id", "occurred_at"),
)

# Compliance minutes per meter and local day (OUTAGEDESK_TIMEZONE); a reading's interval is
# split at local midnight. Voltage qualified rate = (1 − Σ out / Σ monitored)·100.
voltage_minutes = sa.Table(
    "voltage_minutes",
    metadata,
    sa.Column("meter_id", sa.Text(), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("transformer_id", sa.Text(), nullable=False),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("area", sa.Text(), nullable=False),
    sa.Column("minutes_monitored", sa.Float(), nullable=False),
    sa.Column("minutes_out_of_band", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("meter_id", "day"),
    sa.Index(None, "day"),
)

# Sags and swells as received (dedup by event_id), with their IEEE 1159 class.
power_quality_events = sa.Table(
    "power_quality_events",
    metadata,
    sa.Column("event_id", sa.Text(), primary_key=True),
    sa.Column("meter_id", sa.Text(), nullable=False),
    sa.Column("transformer_id", sa.Text(), nullable=False),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),  # sag | swell
    sa.Column("category", sa.Text(), nullable=False),  # IEEE 1159 class or "unclassified"
    sa.Column("magnitude_v", sa.Float(), nullable=False),
    sa.Column("duration_ms", sa.Float(), nullable=False),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Index(None, "occurred_at"),
)

# Sag/swell counts per meter, local day, kind and IEEE 1159 class.
power_quality_counts = sa.Table(
    "power_quality_counts",
    metadata,
    sa.Column("meter_id", sa.Text(), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),
    sa.Column("category", sa.Text(), nullable=False),
    sa.Column("transformer_id", sa.Text(), nullable=False),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("area", sa.Text(), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("meter_id", "day", "kind", "category"),
    sa.Index(None, "day"),
)

# Every call_* signal (a report the customer had to make), with the incident it was about
# when that was known at the time (the caller's own, or the incident holding the customer).
customer_reports = sa.Table(
    "customer_reports",
    metadata,
    sa.Column("event_id", sa.Text(), primary_key=True),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("meter_id", sa.Text()),
    sa.Column("transformer_id", sa.Text()),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),  # signal kind: call_no_power, call_low_voltage…
    sa.Column("channel", sa.Text()),
    sa.Column("incident_id", sa.Text()),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Index(None, "customer_id", "occurred_at"),
    sa.Index(None, "incident_id"),
    sa.Index(None, "transformer_id", "kind", "occurred_at"),
)

# Post-restoration surveys (customer report kind ``survey``), score 1..5.
surveys = sa.Table(
    "surveys",
    metadata,
    sa.Column("event_id", sa.Text(), primary_key=True),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("incident_id", sa.Text()),  # given, else the customer's latest restored one
    sa.Column("score", sa.Integer(), nullable=False),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Index(None, "incident_id"),
    sa.Index(None, "occurred_at"),
)

# The SLA clock's durable deadlines (services.incidents.domain.sla_clock.DeadlineRow).
sla_deadlines = sa.Table(
    "sla_deadlines",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("target", sa.Text(), nullable=False),
    sa.Column("area", sa.Text(), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("at_risk_at", TS, nullable=False),
    sa.Column("due_at", TS, nullable=False),
    sa.Column("completed_at", TS),  # when the target's completing event happened
    sa.Column("status", sa.Text(), nullable=False),  # on_track | at_risk | met | breached
    sa.Column("at_risk_emitted", sa.Boolean(), nullable=False),
    sa.Column("breached_emitted", sa.Boolean(), nullable=False),
    sa.Column("completed", sa.Boolean(), nullable=False),  # met or dropped: nothing owed
    sa.PrimaryKeyConstraint("incident_id", "target"),
    sa.Index(None, "completed", "at_risk_at"),
    sa.Index(None, "completed", "due_at"),
)

# SLA refreshes owed to the process whose signals partition holds the incident's feeder:
# first notices that moved earlier, recorded by another process's deliveries consumer
# (services.incidents.quality_hooks), which does not lock that feeder itself.
sla_refresh_owed = sa.Table(
    "sla_refresh_owed",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("owed_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("incident_id"),
)

# First notification sent to each customer of an incident (from notify.deliveries.v1).
first_notices = sa.Table(
    "first_notices",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("sent_at", TS, nullable=False),
    sa.Column("stage", sa.Text(), nullable=False),
    sa.Column("channel", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("incident_id", "customer_id"),
)

# Satisfaction impact per affected customer (live while open, final once restored/closed).
customer_impacts = sa.Table(
    "customer_impacts",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("impact", sa.Float(), nullable=False),
    sa.Column("components", JSON, nullable=False),  # {component: value}, sums to impact
    sa.Column("inputs", JSON, nullable=False),  # the formula inputs (for calibration)
    sa.Column("interruption_min", sa.Float(), nullable=False),
    sa.Column("final", sa.Boolean(), nullable=False),
    sa.Column("computed_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("incident_id", "customer_id"),
    sa.Index(None, "customer_id"),
)

# Each run of ``outagedesk impact calibrate`` (the latest R² goes into the report).
calibrations = sa.Table(
    "calibrations",
    metadata,
    sa.Column("id", AUTO_ID, primary_key=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("samples", sa.Integer(), nullable=False),
    sa.Column("r2_before", sa.Float()),
    sa.Column("r2_after", sa.Float()),
    sa.Column("weights", JSON, nullable=False),  # fitted {a, b, c, e, f, g, h}
    sa.Column("applied", sa.Boolean(), nullable=False),
)
