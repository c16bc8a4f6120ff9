"""notify: ``ix_jobs_due`` on (next_attempt_at, id), the claim's own order

A claim takes the due jobs ``ORDER BY next_attempt_at, id LIMIT n``. With the index on
``next_attempt_at`` alone, PostgreSQL sorted every due job per claim: the jobs of one
restoration share their due time, and under the generic plan (statuses bound as parameters,
so the partial index's condition could not be proven) it read them all through
``ix_jobs_status_next_attempt_at`` and sorted 155,000 rows on disk, 190 ms a claim in the
200,000-customer storm. With the id in the index (and the statuses written into the
statement) a claim reads its ``n`` rows in order: 0.4 ms. SQLite's index entries end with
the rowid (the id) anyway; it gets the same definition so both databases have one schema.

PostgreSQL's ``ix_jobs_status_next_attempt_at`` (kept by notify_0003 for the generic plan)
is dropped: nothing reads it now, and every job update (a job is written two to three
times) paid to keep it.

Revision ID: notify_0004
Revises: notify_0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "notify_0004"
down_revision: str | None = "notify_0003"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "notify"
CLAIMABLE = sa.text("status IN ('pending', 'retry', 'sending')")


def _due_index(columns: list[str]) -> None:
    op.drop_index("ix_jobs_due", table_name="jobs", schema=SCHEMA)
    op.create_index("ix_jobs_due", "jobs", columns, schema=SCHEMA,
                    postgresql_where=CLAIMABLE, sqlite_where=CLAIMABLE)  # fmt: skip


def upgrade() -> None:
    _due_index(["next_attempt_at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_jobs_status_next_attempt_at", table_name="jobs", schema=SCHEMA)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_jobs_status_next_attempt_at", "jobs", ["status", "next_attempt_at"],
                        schema=SCHEMA)  # fmt: skip
    _due_index(["next_attempt_at"])
