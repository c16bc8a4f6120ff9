"""incidents: correlator state, incidents, interruptions, timeline, crews, planned, audit

Revision ID: incidents_0002
Revises: incidents_0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "incidents_0002"
down_revision: str | None = "incidents_0001"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", AUTO_ID, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=True),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_audit_at"), "audit", ["at"], unique=False, schema=SCHEMA)
    op.create_index(
        op.f("ix_audit_incident_id"), "audit", ["incident_id"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "correlator_timers",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject_id", name=op.f("pk_correlator_timers")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_correlator_timers_feeder_id"),
        "correlator_timers",
        ["feeder_id"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "crews",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("current_incident_id", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crews")),
        schema=SCHEMA,
    )
    op.create_table(
        "customer_state",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("still_out", sa.Boolean(), nullable=False),
        sa.Column("presumed", sa.Boolean(), nullable=False),
        sa.Column("last_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_end", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_state")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_customer_state_feeder_id"),
        "customer_state",
        ["feeder_id"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "device_state",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lockout", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_state")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_device_state_feeder_id"),
        "device_state",
        ["feeder_id"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "etr_history",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etr", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "n", name=op.f("pk_etr_history")),
        schema=SCHEMA,
    )
    op.create_table(
        "feeder_versions",
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("writer", sa.Text(), nullable=False),
        sa.Column("next_wake", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("feeder_id", name=op.f("pk_feeder_versions")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_feeder_versions_next_wake"),
        "feeder_versions",
        ["next_wake"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "holders",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_holders")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_holders_feeder_id"), "holders", ["feeder_id"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "incident_customers",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name=op.f("pk_incident_customers")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_incident_customers_customer_id"),
        "incident_customers",
        ["customer_id"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("transformer_id", sa.Text(), nullable=True),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column("area", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("etr", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("parent_incident_id", sa.Text(), nullable=True),
        sa.Column("merged_into", sa.Text(), nullable=True),
        sa.Column("crew_id", sa.Text(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customers_affected", sa.Integer(), nullable=False),
        sa.Column("customers_out", sa.Integer(), nullable=False),
        sa.Column("customer_minutes", sa.Float(), nullable=False),
        sa.Column("etr_slips", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sla", JSON, nullable=False),
        sa.Column("impact", JSON, nullable=True),
        sa.Column("snapshot", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_incidents_area"), "incidents", ["area"], unique=False, schema=SCHEMA)
    op.create_index(
        op.f("ix_incidents_detected_at_id"),
        "incidents",
        ["detected_at", "id"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_incidents_feeder_id_status"),
        "incidents",
        ["feeder_id", "status"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_incidents_parent_incident_id"),
        "incidents",
        ["parent_incident_id"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_incidents_status"), "incidents", ["status"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "interruptions",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_source", sa.Text(), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_source", sa.Text(), nullable=True),
        sa.Column("unverified", sa.Boolean(), nullable=False),
        sa.Column("momentary", sa.Boolean(), nullable=False),
        sa.Column("planned", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name=op.f("pk_interruptions")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_interruptions_customer_id_start"),
        "interruptions",
        ["customer_id", "start"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_interruptions_start"), "interruptions", ["start"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "issued_ids",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_ids")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_issued_ids_feeder_id"), "issued_ids", ["feeder_id"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "notes",
        sa.Column("id", AUTO_ID, primary_key=True),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_notes_incident_id"), "notes", ["incident_id"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "planned_outages",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("transformer_id", sa.Text(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planned_outages")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_planned_outages_starts_at"),
        "planned_outages",
        ["starts_at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "processed_signals",
        sa.Column("signal_id", sa.Text(), nullable=False),
        sa.Column("feeder_id", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signal_id", name=op.f("pk_processed_signals")),
        schema=SCHEMA,
    )
    op.create_table(
        "timeline",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "n", name=op.f("pk_timeline")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("timeline", schema=SCHEMA)
    op.drop_table("processed_signals", schema=SCHEMA)
    op.drop_index(op.f("ix_planned_outages_starts_at"), table_name="planned_outages", schema=SCHEMA)
    op.drop_table("planned_outages", schema=SCHEMA)
    op.drop_index(op.f("ix_notes_incident_id"), table_name="notes", schema=SCHEMA)
    op.drop_table("notes", schema=SCHEMA)
    op.drop_index(op.f("ix_issued_ids_feeder_id"), table_name="issued_ids", schema=SCHEMA)
    op.drop_table("issued_ids", schema=SCHEMA)
    op.drop_index(op.f("ix_interruptions_start"), table_name="interruptions", schema=SCHEMA)
    op.drop_index(
        op.f("ix_interruptions_customer_id_start"), table_name="interruptions", schema=SCHEMA
    )
    op.drop_table("interruptions", schema=SCHEMA)
    op.drop_index(op.f("ix_incidents_status"), table_name="incidents", schema=SCHEMA)
    op.drop_index(op.f("ix_incidents_parent_incident_id"), table_name="incidents", schema=SCHEMA)
    op.drop_index(op.f("ix_incidents_feeder_id_status"), table_name="incidents", schema=SCHEMA)
    op.drop_index(op.f("ix_incidents_detected_at_id"), table_name="incidents", schema=SCHEMA)
    op.drop_index(op.f("ix_incidents_area"), table_name="incidents", schema=SCHEMA)
    op.drop_table("incidents", schema=SCHEMA)
    op.drop_index(
        op.f("ix_incident_customers_customer_id"), table_name="incident_customers", schema=SCHEMA
    )
    op.drop_table("incident_customers", schema=SCHEMA)
    op.drop_index(op.f("ix_holders_feeder_id"), table_name="holders", schema=SCHEMA)
    op.drop_table("holders", schema=SCHEMA)
    op.drop_index(op.f("ix_feeder_versions_next_wake"), table_name="feeder_versions", schema=SCHEMA)
    op.drop_table("feeder_versions", schema=SCHEMA)
    op.drop_table("etr_history", schema=SCHEMA)
    op.drop_index(op.f("ix_device_state_feeder_id"), table_name="device_state", schema=SCHEMA)
    op.drop_table("device_state", schema=SCHEMA)
    op.drop_index(op.f("ix_customer_state_feeder_id"), table_name="customer_state", schema=SCHEMA)
    op.drop_table("customer_state", schema=SCHEMA)
    op.drop_table("crews", schema=SCHEMA)
    op.drop_index(
        op.f("ix_correlator_timers_feeder_id"), table_name="correlator_timers", schema=SCHEMA
    )
    op.drop_table("correlator_timers", schema=SCHEMA)
    op.drop_index(op.f("ix_audit_incident_id"), table_name="audit", schema=SCHEMA)
    op.drop_index(op.f("ix_audit_at"), table_name="audit", schema=SCHEMA)
    op.drop_table("audit", schema=SCHEMA)
