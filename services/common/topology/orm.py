"""Tables of schema ``topology``: the network of DESIGN section 2 and its version.

No foreign keys between the tables: the loader validates every reference before anything is
written, and a reload replaces all tables in one transaction, so row-by-row constraint
checks would only slow down a 100k-customer upsert and force an insert order.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.orm import metadata_for

metadata = metadata_for("topology")

feeders = sa.Table(
    "feeders",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("substation", sa.Text(), nullable=False),
    sa.Column("area", sa.Text(), nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("feeder", sa.Text(), nullable=False),
    sa.Column("parent", sa.Text(), nullable=True),
    sa.Column("kind", sa.Text(), nullable=False),
    sa.Index(None, "feeder"),
)

transformers = sa.Table(
    "transformers",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("device", sa.Text(), nullable=False),
    sa.Column("nominal_v", sa.Float(), nullable=False),
    sa.Column("phases", sa.Integer(), nullable=False),
    sa.Column("area", sa.Text(), nullable=True),
    sa.Index(None, "device"),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    # Not unique in the database: two customers may swap meters in one reload, and the
    # loader already guarantees one customer per meter.
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
    sa.Index(None, "meter"),
    sa.Index(None, "transformer"),
)

# One row (id 1): the version of the stored topology, bumped by every load.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("id", sa.SmallInteger(), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
)

NETWORK_TABLES: tuple[sa.Table, ...] = (feeders, devices, transformers, customers)
