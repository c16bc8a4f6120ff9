"""incidents: indexes for the report queries

``interruptions.end`` lets a short period in a long history find the interruptions that
started before it and were still running (the ``overlapping`` filter of
``services.incidents.report_interruptions``) without scanning every earlier row;
``first_notices.customer_id`` serves the per-customer first-notice lookup of the
satisfaction report.

Revision ID: incidents_0004
Revises: incidents_0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision: str = "incidents_0004"
down_revision: str | None = "incidents_0003"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"


def upgrade() -> None:
    op.create_index(
        op.f("ix_interruptions_end"), "interruptions", ["end"], unique=False, schema=SCHEMA
    )
    op.create_index(
        op.f("ix_first_notices_customer_id"),
        "first_notices",
        ["customer_id"],
        unique=False,
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_first_notices_customer_id"), table_name="first_notices", schema=SCHEMA)
    op.drop_index(op.f("ix_interruptions_end"), table_name="interruptions", schema=SCHEMA)
