"""incidents: SLA refreshes owed to the owner of an incident's feeder

A first notice that moved earlier changes its incident's SLA. The deliveries consumer
(``notify.deliveries.v1``, its own group) refreshed it at once, locking the incident's
feeder even when another incidents process owned it. It then waited for that process's
batch in flight, holding its own process's cache lock, and the owner had to reload the
whole feeder afterwards. It now leaves a row here for those incidents; the owner's timer
run refreshes them (``services.incidents.sla_scheduler.OwedSlaRefresh``).

Revision ID: incidents_0011
Revises: incidents_0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "incidents_0011"
down_revision: str | None = "incidents_0010"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"


def upgrade() -> None:
    op.create_table(
        "sla_refresh_owed",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("owed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_sla_refresh_owed")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("sla_refresh_owed", schema=SCHEMA)
