"""incidents: voltage readings and minutes, sags/swells, customer reports, surveys, SLA
deadlines, first notices, customer impacts, calibrations

Revision ID: incidents_0003
Revises: incidents_0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "incidents_0003"
down_revision: str | None = "incidents_0002"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "voltage_readings",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("meter_id", sa.Text(), nullable=False),
        sa.Column("transformer_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("v_avg", sa.Float(), nullable=False),
        sa.Column("v_min", sa.Float(), nullable=True),
        sa.Column("v_max", sa.Float(), nullable=True),
        sa.Column("in_band", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_voltage_readings")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_voltage_readings_meter_id_occurred_at"),
        "voltage_readings",
        ["meter_id", "occurred_at"],
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_voltage_readings_transformer_id_occurred_at"),
        "voltage_readings",
        ["transformer_id", "occurred_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "voltage_minutes",
        sa.Column("meter_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("transformer_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("area", sa.Text(), nullable=False),
        sa.Column("minutes_monitored", sa.Float(), nullable=False),
        sa.Column("minutes_out_of_band", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "day", name=op.f("pk_voltage_minutes")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_voltage_minutes_day"), "voltage_minutes", ["day"], schema=SCHEMA)
    op.create_table(
        "power_quality_events",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("meter_id", sa.Text(), nullable=False),
        sa.Column("transformer_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("magnitude_v", sa.Float(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_power_quality_events")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_power_quality_events_occurred_at"),
        "power_quality_events",
        ["occurred_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "power_quality_counts",
        sa.Column("meter_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("transformer_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("area", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "meter_id", "day", "kind", "category", name=op.f("pk_power_quality_counts")
        ),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_power_quality_counts_day"), "power_quality_counts", ["day"], schema=SCHEMA
    )
    op.create_table(
        "customer_reports",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("meter_id", sa.Text(), nullable=True),
        sa.Column("transformer_id", sa.Text(), nullable=True),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("incident_id", sa.Text(), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_customer_reports")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_customer_reports_customer_id_occurred_at"),
        "customer_reports",
        ["customer_id", "occurred_at"],
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_customer_reports_incident_id"), "customer_reports", ["incident_id"], schema=SCHEMA
    )
    op.create_index(
        op.f("ix_customer_reports_transformer_id_kind_occurred_at"),
        "customer_reports",
        ["transformer_id", "kind", "occurred_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "surveys",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_surveys")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_surveys_incident_id"), "surveys", ["incident_id"], schema=SCHEMA)
    op.create_index(op.f("ix_surveys_occurred_at"), "surveys", ["occurred_at"], schema=SCHEMA)
    op.create_table(
        "sla_deadlines",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("area", sa.Text(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("at_risk_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("at_risk_emitted", sa.Boolean(), nullable=False),
        sa.Column("breached_emitted", sa.Boolean(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "target", name=op.f("pk_sla_deadlines")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_sla_deadlines_completed_at_risk_at"),
        "sla_deadlines",
        ["completed", "at_risk_at"],
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_sla_deadlines_completed_due_at"),
        "sla_deadlines",
        ["completed", "due_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "first_notices",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name=op.f("pk_first_notices")),
        schema=SCHEMA,
    )
    op.create_table(
        "customer_impacts",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("impact", sa.Float(), nullable=False),
        sa.Column("components", JSON, nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("interruption_min", sa.Float(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name=op.f("pk_customer_impacts")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_customer_impacts_customer_id"), "customer_impacts", ["customer_id"], schema=SCHEMA
    )
    op.create_table(
        "calibrations",
        sa.Column("id", AUTO_ID, nullable=False, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("r2_before", sa.Float(), nullable=True),
        sa.Column("r2_after", sa.Float(), nullable=True),
        sa.Column("weights", JSON, nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    # dropping a table drops its indexes
    op.drop_table("calibrations", schema=SCHEMA)
    op.drop_table("customer_impacts", schema=SCHEMA)
    op.drop_table("first_notices", schema=SCHEMA)
    op.drop_table("sla_deadlines", schema=SCHEMA)
    op.drop_table("surveys", schema=SCHEMA)
    op.drop_table("customer_reports", schema=SCHEMA)
    op.drop_table("power_quality_counts", schema=SCHEMA)
    op.drop_table("power_quality_events", schema=SCHEMA)
    op.drop_table("voltage_minutes", schema=SCHEMA)
    op.drop_table("voltage_readings", schema=SCHEMA)
