"""Tables of schema ``notify`` (the consumer offsets and the outbox come from
``services.common``; migrations in ``services/notify/migrations``).

What the decisions need is persisted per incident: ``incidents`` (the latest snapshot
fields and the links that make a family: ``parent_incident_id``, ``merged_into``),
``interruptions`` (one row per customer and incident, with ``moved_from``/``moved_to`` so
moved customers link incidents too), ``planned_customers`` and the ``jobs`` themselves.
Loading an incident family is therefore a few indexed queries (see ``repository.py``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from services.common.orm import metadata_for

SCHEMA = "notify"
metadata = metadata_for(SCHEMA)
# SQLite autoincrements only an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")
TZ = DateTime(timezone=True)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("detected_at", TZ),
    Column("etr", TZ),
    Column("parent_incident_id", Text),
    Column("merged_into", Text),
    Column("area", Text),
    Column("cause", Text),
    Column("planned_start", TZ),
    Column("planned_end", TZ),
    Column("last_seq", BigInteger, nullable=False),
    Index("ix_incidents_parent_incident_id", "parent_incident_id"),
    Index("ix_incidents_merged_into", "merged_into"),
)

interruptions = Table(
    "interruptions",
    metadata,
    Column("incident_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("started_at", TZ, nullable=False),
    Column("restored_at", TZ),
    Column("restore_verified", Boolean, nullable=False),
    Column("moved_from", Text),
    Column("moved_to", Text),
    Column("reported", Boolean, nullable=False),
    PrimaryKeyConstraint("incident_id", "customer_id"),
    Index("ix_interruptions_customer_id", "customer_id"),
)

planned_customers = Table(
    "planned_customers",
    metadata,
    Column("incident_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    PrimaryKeyConstraint("incident_id", "customer_id"),
)

# Jobs a sender may claim ("sending": a lease that ran out): the partial index ix_jobs_due's
# condition, which the claims repeat literally (bound statuses would keep PostgreSQL's
# generic plan and SQLite's planner from using that index).
CLAIMABLE = text("status IN ('pending', 'retry', 'sending')")

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("incident_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("revision", BigInteger, nullable=False),
    # pending | sending | sent | retry | failed | cancelled
    Column("status", Text, nullable=False),
    Column("due_at", TZ, nullable=False),  # when the decisions said it may go
    # when a sender should look at it next: due, deferred, retry, or the end of the lease
    # of a claimed ("sending") job
    Column("next_attempt_at", TZ),
    Column("attempts", Integer, nullable=False),
    Column("channel", Text),
    Column("address", Text),
    Column("language", Text),
    Column("payload", JSON, nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("claimed_at", TZ),
    Column("sent_at", TZ),
    Column("last_error", Text),
    Column("provider_id", Text),
    UniqueConstraint("incident_id", "customer_id", "stage", "revision"),  # idempotency key
    Index("ix_jobs_customer_id", "customer_id", "incident_id"),
    Index(  # the claim's order (migration notify_0004)
        "ix_jobs_due",
        "next_attempt_at",
        "id",
        postgresql_where=CLAIMABLE,
        sqlite_where=CLAIMABLE,
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("job_id", BigInteger, nullable=False),
    Column("n", Integer, nullable=False),
    Column("at", TZ, nullable=False),
    Column("channel", Text, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("retryable", Boolean, nullable=False),
    Column("error", Text),
    Column("provider_id", Text),
    # a re-send after a crash (the admitted duplicate) repeats n; keep both rows
    Column("id", BigId, primary_key=True),
    Index("ix_attempts_job_id", "job_id"),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("processed_at", TZ, nullable=False),
)

last_message = Table(
    "last_message",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("at", TZ, nullable=False),
    Column("stage", Text, nullable=False),
    Column("incident_id", Text, nullable=False),
    Column("channel", Text),
    Column("body", Text),
)

opt_outs = Table(
    "opt_outs",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("at", TZ, nullable=False),
    Column("source", Text),
)

escalations = Table(
    "escalations",
    metadata,
    Column("incident_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("at", TZ, nullable=False),  # due: when the customer's outage notice is due
    # pending | sent | cancelled | recorded (no operators' webhook configured)
    Column("status", Text, nullable=False),
    Column("sent", Boolean, nullable=False),
    Column("sent_at", TZ),
    Column("last_error", Text),
    PrimaryKeyConstraint("incident_id", "customer_id"),
    Index("ix_escalations_status_at", "status", "at"),
)
