"""incidents: each interruption's feeder, substation and area, and report indexes

The reliability report groups a year of customer interruptions by feeder, substation or
area. Joining them to the 1,000,000-customer topology at report time dominated its cost,
so each interruption row now carries its customer's groups, filled when it is written
(``services.incidents.interruption_groups``) and backfilled here from the topology.

Indexes (PostgreSQL ``INCLUDE`` makes them covering; SQLite ignores it):
- ``start`` covering the columns the report sums, so a period is an index-only range scan;
- ``start`` of unplanned, not-flagged-momentary rows covering ``end``: the daily SAIDI of up
  to five years of Major Event Day history, read index-only;
- on PostgreSQL, a partial index of the unplanned momentary rows by customer for the
  MAIFIe event chaining (SQLite keeps using ``(customer_id, start)``).

Revision ID: incidents_0005
Revises: incidents_0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "incidents_0005"
down_revision: str | None = "incidents_0004"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"
GROUP_COLUMNS = ("feeder_id", "substation", "area")
COVERED = ["incident_id", "customer_id", "end", "momentary", "planned", *GROUP_COLUMNS]

# A transformer's own area overrides its feeder's (DESIGN section 2).
BACKFILL_PG = """
UPDATE incidents.interruptions AS i
SET feeder_id = g.feeder_id, substation = g.substation, area = g.area
FROM (SELECT c.id AS customer_id, f.id AS feeder_id, f.substation,
             coalesce(t.area, f.area) AS area
      FROM topology.customers c
      JOIN topology.transformers t ON t.id = c.transformer
      JOIN topology.devices d ON d.id = t.device
      JOIN topology.feeders f ON f.id = d.feeder) AS g
WHERE g.customer_id = i.customer_id AND i.start >= :lo AND i.start < :hi
"""

_GROUP_SOURCE = """
FROM topology.customers c
JOIN topology.transformers t ON t.id = c.transformer
JOIN topology.devices d ON d.id = t.device
JOIN topology.feeders f ON f.id = d.feeder
WHERE c.id = interruptions.customer_id
"""
BACKFILL_SQLITE = f"""
UPDATE incidents.interruptions
SET feeder_id = (SELECT f.id {_GROUP_SOURCE}),
    substation = (SELECT f.substation {_GROUP_SOURCE}),
    area = (SELECT coalesce(t.area, f.area) {_GROUP_SOURCE})
"""  # noqa: S608 - constant text


def _backfill_by_month(bind: sa.Connection) -> None:
    # A month per statement keeps each under the driver's command timeout on a big table.
    lo, hi = bind.execute(
        sa.text("SELECT min(start), max(start) FROM incidents.interruptions")
    ).one()
    while lo is not None and lo <= hi:
        step = lo + timedelta(days=31)
        bind.execute(sa.text(BACKFILL_PG), {"lo": lo, "hi": step})
        lo = step


def upgrade() -> None:
    for name in GROUP_COLUMNS:
        op.add_column("interruptions", sa.Column(name, sa.Text(), nullable=True), schema=SCHEMA)
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("customers", schema="topology"):
        pass  # incidents migrated on its own: no topology to backfill from
    elif bind.dialect.name == "postgresql":
        _backfill_by_month(bind)
    else:
        op.execute(BACKFILL_SQLITE)
    op.create_index(
        "ix_interruptions_start_covering",
        "interruptions",
        ["start"],
        schema=SCHEMA,
        postgresql_include=COVERED,
    )
    op.create_index(
        "ix_interruptions_sustained",
        "interruptions",
        ["start"],
        schema=SCHEMA,
        postgresql_include=["end"],
        postgresql_where=sa.text("NOT planned AND NOT momentary"),
        sqlite_where=sa.text("NOT planned AND NOT momentary"),
    )
    if bind.dialect.name == "postgresql":
        # Written as report_interruptions.momentary_row writes it, so the planner matches it.
        op.create_index(
            "ix_interruptions_momentary",
            "interruptions",
            ["customer_id", "start"],
            schema=SCHEMA,
            postgresql_include=["incident_id", *GROUP_COLUMNS],
            postgresql_where=sa.text(
                "NOT planned AND (momentary OR \"end\" - start <= interval '5 minutes')"
            ),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_interruptions_momentary", table_name="interruptions", schema=SCHEMA)
    op.drop_index("ix_interruptions_sustained", table_name="interruptions", schema=SCHEMA)
    op.drop_index("ix_interruptions_start_covering", table_name="interruptions", schema=SCHEMA)
    for name in reversed(GROUP_COLUMNS):
        op.drop_column("interruptions", name, schema=SCHEMA)
