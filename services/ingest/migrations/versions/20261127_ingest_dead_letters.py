"""ingest: stored dead letters

Revision ID: ingest_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "ingest_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ingest"


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("encoding", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("error_path", sa.Text(), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint(
            "topic", "partition", "offset", name="uq_dead_letters_topic_partition_offset"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_dead_letters_error_code_failed_at",
        "dead_letters",
        ["error_code", "failed_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_dead_letters_error_code_failed_at", table_name="dead_letters", schema=SCHEMA)
    op.drop_table("dead_letters", schema=SCHEMA)
