"""incidents: on PostgreSQL, the outbox's unpublished rows indexed in id order

The relay's claim takes the oldest unpublished heads (``ORDER BY id LIMIT n``). PostgreSQL
found them by walking the primary key from the first row ever written, past every published
row (and each one's dead versions): 81 ms a claim once notify's outbox held 20,000 rows in
the 200,000-customer storm, 35 s of the database's time. This partial index holds only the
unpublished rows: 1.4 ms. Its extra term ``seq IS NOT NULL`` (always true) keeps it out of
the claim's per-head subquery (see ``OutboxRelay._claim``). SQLite's claim already reads
``ix_outbox_unpublished`` and sorts the few rows it finds, so the index is PostgreSQL's only.

Revision ID: incidents_0010
Revises: incidents_0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "incidents_0010"
down_revision: str | None = "incidents_0009"
branch_labels: str | None = None
depends_on: str | None = None

UNPUBLISHED = "published_at IS NULL AND seq IS NOT NULL"
SCHEMA = "incidents"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_outbox_unpublished_id", "outbox", ["id"], schema=SCHEMA,
                        postgresql_where=sa.text(UNPUBLISHED))  # fmt: skip


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_outbox_unpublished_id", table_name="outbox", schema=SCHEMA)
