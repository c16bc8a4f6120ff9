"""notify: on SQLite, no index on jobs (status, next_attempt_at)

Claims and the next due time read SQLite's jobs through the partial index ``ix_jobs_due``
(named in the query: see ``services.notify.sqlite_queue``), so on SQLite nothing reads
``ix_jobs_status_next_attempt_at`` any more, while every claim, outcome and new job paid
to keep it: about a third of the time SQLite spends updating a job. PostgreSQL keeps it
(a generic plan of the claim cannot prove the partial index's condition).

Revision ID: notify_0003
Revises: notify_0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision: str = "notify_0003"
down_revision: str | None = "notify_0002"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "notify"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_jobs_status_next_attempt_at", table_name="jobs", schema=SCHEMA)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_jobs_status_next_attempt_at", "jobs", ["status", "next_attempt_at"],
                        schema=SCHEMA)  # fmt: skip
