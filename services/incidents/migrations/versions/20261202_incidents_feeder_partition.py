"""incidents: the signals partition of each feeder (timers fired by the partition's owner)

With two or more incidents consumers, each process's timer loop fired every due feeder in
the database, whoever owned it, and judged it against its own processing watermark. The
partition a feeder's signals arrive on is now stored with its version row (written when a
consumer saves the feeder), so a process fires the timers of the feeders on partitions
it holds; after a rebalance the new owner fires them. NULL (not known yet, e.g. a feeder
only an operator touched) is fired by any process, as before.

Revision ID: incidents_0009
Revises: incidents_0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "incidents_0009"
down_revision: str | None = "incidents_0008"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"


def upgrade() -> None:
    op.add_column(
        "feeder_versions", sa.Column("partition", sa.Integer(), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("feeder_versions", "partition", schema=SCHEMA)
