"""notify: jobs, attempts, processed events, per-incident state, last message, opt-outs,
escalations

Revision ID: notify_0002
Revises: notify_0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "notify_0002"
down_revision: str | None = "notify_0001"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "notify"
TZ = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CLAIMABLE = sa.text("status IN ('pending', 'retry', 'sending')")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("detected_at", TZ),
        sa.Column("etr", TZ),
        sa.Column("parent_incident_id", sa.Text()),
        sa.Column("merged_into", sa.Text()),
        sa.Column("area", sa.Text()),
        sa.Column("cause", sa.Text()),
        sa.Column("planned_start", TZ),
        sa.Column("planned_end", TZ),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        schema=SCHEMA,
    )
    op.create_index("ix_incidents_parent_incident_id", "incidents", ["parent_incident_id"],
                    schema=SCHEMA)  # fmt: skip
    op.create_index("ix_incidents_merged_into", "incidents", ["merged_into"], schema=SCHEMA)
    op.create_table(
        "interruptions",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("restored_at", TZ),
        sa.Column("restore_verified", sa.Boolean(), nullable=False),
        sa.Column("moved_from", sa.Text()),
        sa.Column("moved_to", sa.Text()),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name="pk_interruptions"),
        schema=SCHEMA,
    )
    op.create_index("ix_interruptions_customer_id", "interruptions", ["customer_id"],
                    schema=SCHEMA)  # fmt: skip
    op.create_table(
        "planned_customers",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name="pk_planned_customers"),
        schema=SCHEMA,
    )
    op.create_table(
        "jobs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("next_attempt_at", TZ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text()),
        sa.Column("address", sa.Text()),
        sa.Column("language", sa.Text()),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("claimed_at", TZ),
        sa.Column("sent_at", TZ),
        sa.Column("last_error", sa.Text()),
        sa.Column("provider_id", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("incident_id", "customer_id", "stage", "revision",
                            name="uq_jobs_incident_id_customer_id_stage_revision"),  # fmt: skip
        schema=SCHEMA,
    )
    op.create_index("ix_jobs_customer_id", "jobs", ["customer_id", "incident_id"], schema=SCHEMA)
    op.create_index("ix_jobs_due", "jobs", ["next_attempt_at"], schema=SCHEMA,
                    postgresql_where=CLAIMABLE, sqlite_where=CLAIMABLE)  # fmt: skip
    op.create_index("ix_jobs_status_next_attempt_at", "jobs", ["status", "next_attempt_at"],
                    schema=SCHEMA)  # fmt: skip
    op.create_table(
        "attempts",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("provider_id", sa.Text()),
        sa.Column("id", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        schema=SCHEMA,
    )
    op.create_index("ix_attempts_job_id", "attempts", ["job_id"], schema=SCHEMA)
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("processed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_processed_events"),
        schema=SCHEMA,
    )
    op.create_table(
        "last_message",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text()),
        sa.Column("body", sa.Text()),
        sa.PrimaryKeyConstraint("customer_id", name="pk_last_message"),
        schema=SCHEMA,
    )
    op.create_table(
        "opt_outs",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("source", sa.Text()),
        sa.PrimaryKeyConstraint("customer_id", name="pk_opt_outs"),
        schema=SCHEMA,
    )
    op.create_table(
        "escalations",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("sent_at", TZ),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name="pk_escalations"),
        schema=SCHEMA,
    )
    op.create_index("ix_escalations_status_at", "escalations", ["status", "at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_escalations_status_at", table_name="escalations", schema=SCHEMA)
    op.drop_table("escalations", schema=SCHEMA)
    op.drop_table("opt_outs", schema=SCHEMA)
    op.drop_table("last_message", schema=SCHEMA)
    op.drop_table("processed_events", schema=SCHEMA)
    op.drop_index("ix_attempts_job_id", table_name="attempts", schema=SCHEMA)
    op.drop_table("attempts", schema=SCHEMA)
    op.drop_index("ix_jobs_status_next_attempt_at", table_name="jobs", schema=SCHEMA)
    op.drop_index("ix_jobs_due", table_name="jobs", schema=SCHEMA)
    op.drop_index("ix_jobs_customer_id", table_name="jobs", schema=SCHEMA)
    op.drop_table("jobs", schema=SCHEMA)
    op.drop_table("planned_customers", schema=SCHEMA)
    op.drop_index("ix_interruptions_customer_id", table_name="interruptions", schema=SCHEMA)
    op.drop_table("interruptions", schema=SCHEMA)
    op.drop_index("ix_incidents_merged_into", table_name="incidents", schema=SCHEMA)
    op.drop_index("ix_incidents_parent_incident_id", table_name="incidents", schema=SCHEMA)
    op.drop_table("incidents", schema=SCHEMA)
