"""Tables of schema ``incidents`` (SQLAlchemy Core), mirrored by the Alembic migrations.

The correlator's plain state (customers, devices, held incidents, holders, timers, issued
ids) is stored row by row so a feeder's correlator can be rebuilt from PostgreSQL after a
restart or a rebalance (DESIGN section 13). ``feeder_versions`` is the per-feeder lock and
cache-coherence token: every writer locks the row, compares it with its in-memory cache,
and bumps it in the same transaction as its writes (DESIGN section 12).

A customer's interruption is ONE row in ``interruptions`` owned by exactly one incident at
a time (moved when a nested or merged incident takes it over); ``incident_customers`` keeps
who an incident ever affected.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from services.common.orm import metadata_for

metadata = metadata_for("incidents")

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("kind", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("device_id", sa.Text()),
    sa.Column("transformer_id", sa.Text()),
    sa.Column("customer_id", sa.Text()),
    sa.Column("area", sa.Text(), nullable=False),
    sa.Column("detected_at", TS, nullable=False),
    sa.Column("confirmed_at", TS),
    sa.Column("acknowledged_at", TS),
    sa.Column("etr", TS),
    sa.Column("restored_at", TS),
    sa.Column("closed_at", TS),
    sa.Column("cause", sa.Text()),
    sa.Column("parent_incident_id", sa.Text()),
    sa.Column("merged_into", sa.Text()),
    sa.Column("crew_id", sa.Text()),
    sa.Column("arrived_at", TS),
    sa.Column("customers_affected", sa.Integer(), nullable=False),
    sa.Column("customers_out", sa.Integer(), nullable=False),
    sa.Column("customer_minutes", sa.Float(), nullable=False),
    sa.Column("etr_slips", sa.Integer(), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),  # the ETag; bumped on every change
    sa.Column("sla", JSON, nullable=False),
    sa.Column("impact", JSON, nullable=True),
    sa.Column("snapshot", JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index(None, "status"),
    sa.Index(None, "feeder_id", "status"),
    sa.Index(None, "area"),
    sa.Index(None, "detected_at", "id"),
    sa.Index(None, "parent_incident_id"),
)

interruptions = sa.Table(
    "interruptions",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.Column("start", TS, nullable=False),
    sa.Column("start_source", sa.Text(), nullable=False),
    sa.Column("end", TS),
    sa.Column("end_source", sa.Text()),
    sa.Column("unverified", sa.Boolean(), nullable=False),
    sa.Column("momentary", sa.Boolean(), nullable=False),
    sa.Column("planned", sa.Boolean(), nullable=False),
    # The customer's groups when the row was written (interruption_groups), so the
    # reliability report never joins the whole customer topology.
    sa.Column("feeder_id", sa.Text()),
    sa.Column("substation", sa.Text()),
    sa.Column("area", sa.Text()),
    sa.PrimaryKeyConstraint("incident_id", "customer_id"),
    sa.Index(None, "customer_id", "start"),
    sa.Index(None, "start"),
    sa.Index(None, "end"),
    sa.Index(
        "ix_interruptions_start_covering",
        "start",
        postgresql_include=["incident_id", "customer_id", "end", "momentary", "planned",
                            "feeder_id", "substation", "area"],
    ),  # fmt: skip
    sa.Index(
        "ix_interruptions_sustained",
        "start",
        postgresql_include=["end"],
        postgresql_where=sa.text("NOT planned AND NOT momentary"),
        sqlite_where=sa.text("NOT planned AND NOT momentary"),
    ),
    # PostgreSQL only (migration incidents_0005): ix_interruptions_momentary, partial on
    # report_interruptions.momentary_row, (customer_id, start) for MAIFIe event chaining.
)

incident_customers = sa.Table(
    "incident_customers",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("customer_id", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("incident_id", "customer_id"),
    sa.Index(None, "customer_id"),
)

timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("n", sa.Integer(), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("type", sa.Text(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("incident_id", "n"),
)

etr_history = sa.Table(
    "etr_history",
    metadata,
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("n", sa.Integer(), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("etr", TS, nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("incident_id", "n"),
)

customer_state = sa.Table(
    "customer_state",
    metadata,
    sa.Column("customer_id", sa.Text(), primary_key=True),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("since", TS),
    sa.Column("at", TS),
    sa.Column("source", sa.Text()),
    sa.Column("still_out", sa.Boolean(), nullable=False),
    sa.Column("presumed", sa.Boolean(), nullable=False),
    sa.Column("last_start", TS),
    sa.Column("last_end", TS),
    sa.Index(None, "feeder_id"),
)

# customer → the incident currently holding their evidence (the correlator's ``holder``)
holders = sa.Table(
    "holders",
    metadata,
    sa.Column("customer_id", sa.Text(), primary_key=True),
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Index(None, "feeder_id"),
)

device_state = sa.Table(
    "device_state",
    metadata,
    sa.Column("device_id", sa.Text(), primary_key=True),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("open", sa.Boolean(), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("lockout", sa.Boolean(), nullable=False),
    sa.Index(None, "feeder_id"),
)

correlator_timers = sa.Table(
    "correlator_timers",
    metadata,
    sa.Column("kind", sa.Text(), nullable=False),  # dwell | confirm | nested
    sa.Column("subject_id", sa.Text(), nullable=False),  # customer (dwell) or incident id
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("due_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("kind", "subject_id"),
    sa.Index(None, "feeder_id"),
)

processed_signals = sa.Table(
    "processed_signals",
    metadata,
    sa.Column("signal_id", sa.Text(), primary_key=True),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("applied_at", TS, nullable=False),
)

issued_ids = sa.Table(
    "issued_ids",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Index(None, "feeder_id"),
)

feeder_versions = sa.Table(
    "feeder_versions",
    metadata,
    sa.Column("feeder_id", sa.Text(), primary_key=True),
    sa.Column("version", sa.BigInteger(), nullable=False),
    # a token unique per write: a rolled-back write can never be mistaken for a committed
    # one that happened to reach the same version number
    sa.Column("writer", sa.Text(), nullable=False),
    sa.Column("next_wake", TS, nullable=True),
    # the signals partition the feeder's evidence arrives on (incidents_0009): a process
    # fires the timers of the feeders on partitions it holds; NULL = not known, any process
    sa.Column("partition", sa.Integer(), nullable=True),
    sa.Index(None, "next_wake"),
)

notes = sa.Table(
    "notes",
    metadata,
    sa.Column("id", AUTO_ID, primary_key=True),
    sa.Column("incident_id", sa.Text(), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Index(None, "incident_id"),
)

crews = sa.Table(
    "crews",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),  # available | dispatched | on_site | off
    sa.Column("location", sa.Text()),
    sa.Column("current_incident_id", sa.Text()),
    sa.Column("updated_at", TS, nullable=False),
)

planned_outages = sa.Table(
    "planned_outages",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("kind", sa.Text(), nullable=False),  # planned | temporary
    # scheduled | in_progress | completed | cancelled
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("feeder_id", sa.Text(), nullable=False),
    sa.Column("device_id", sa.Text()),
    sa.Column("transformer_id", sa.Text()),
    sa.Column("starts_at", TS, nullable=False),
    sa.Column("ends_at", TS, nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("incident_id", sa.Text()),
    sa.Column("created_by", sa.Text(), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index(None, "starts_at"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", AUTO_ID, primary_key=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),
    sa.Column("incident_id", sa.Text()),
    sa.Column("before", JSON),
    sa.Column("after", JSON),
    sa.Index(None, "incident_id"),
    sa.Index(None, "at"),
)
