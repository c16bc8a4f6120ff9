"""Tables of schema ``ingest``: the stored dead letters (DESIGN section 14)."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.orm import metadata_for

metadata = metadata_for("ingest")

dead_letters = sa.Table(
    "dead_letters",
    metadata,
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
    # A redelivered batch must not store a message twice (insert-or-ignore on this key).
    sa.UniqueConstraint("topic", "partition", "offset"),
    sa.Index(None, "error_code", "failed_at"),
)
