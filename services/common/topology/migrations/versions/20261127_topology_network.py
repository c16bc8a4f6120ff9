"""topology: feeders, devices, transformers, customers and the version row

Revision ID: topology_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "topology_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "topology"


def upgrade() -> None:
    op.create_table(
        "feeders",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("substation", sa.Text(), nullable=False),
        sa.Column("area", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feeders"),
        schema=SCHEMA,
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("feeder", sa.Text(), nullable=False),
        sa.Column("parent", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        schema=SCHEMA,
    )
    op.create_index("ix_devices_feeder", "devices", ["feeder"], schema=SCHEMA)
    op.create_table(
        "transformers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("nominal_v", sa.Float(), nullable=False),
        sa.Column("phases", sa.Integer(), nullable=False),
        sa.Column("area", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_transformers"),
        schema=SCHEMA,
    )
    op.create_index("ix_transformers_device", "transformers", ["device"], schema=SCHEMA)
    op.create_table(
        "customers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("meter", sa.Text(), nullable=False),
        sa.Column("transformer", sa.Text(), nullable=False),
        sa.Column("class", sa.Text(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("member", sa.Boolean(), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("quiet_hours", sa.Text(), nullable=True),
        sa.Column("sms", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("wechat", sa.Text(), nullable=True),
        sa.Column("webhook", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
        schema=SCHEMA,
    )
    op.create_index("ix_customers_meter", "customers", ["meter"], schema=SCHEMA)
    op.create_index("ix_customers_transformer", "customers", ["transformer"], schema=SCHEMA)
    op.create_table(
        "meta",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meta"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("meta", schema=SCHEMA)
    op.drop_index("ix_customers_transformer", table_name="customers", schema=SCHEMA)
    op.drop_index("ix_customers_meter", table_name="customers", schema=SCHEMA)
    op.drop_table("customers", schema=SCHEMA)
    op.drop_index("ix_transformers_device", table_name="transformers", schema=SCHEMA)
    op.drop_table("transformers", schema=SCHEMA)
    op.drop_index("ix_devices_feeder", table_name="devices", schema=SCHEMA)
    op.drop_table("devices", schema=SCHEMA)
    op.drop_table("feeders", schema=SCHEMA)
