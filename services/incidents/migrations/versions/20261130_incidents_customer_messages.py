"""incidents: the last message notify sent each customer (call-centre lookup)

Kept by the ``notify.deliveries.v1`` handler (``services.incidents.customer_messages``):
one row per customer, the latest delivery with status ``sent``.

Revision ID: incidents_0007
Revises: incidents_0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "incidents_0007"
down_revision: str | None = "incidents_0006"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_messages",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_messages")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("customer_messages", schema=SCHEMA)
