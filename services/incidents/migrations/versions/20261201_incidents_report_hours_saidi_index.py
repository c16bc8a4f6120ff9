"""incidents: covering indexes on report_hours for the reliability report

The Major Event Day threshold needs up to five years of daily system SAIDI; the roll-up
path sums ``report_hours.sustained_us`` per hour over that history (~230,000 rows a year
at 1,000,000 customers). An index on ``hour`` carrying ``sustained_us`` turns the
sequential scan of the whole table (filtered to the range) into an index-only range scan
already in hour order, so the per-hour sums stream without a hash table: about a third of
the CPU for a year of history. The ``max_end`` index gains ``hour`` too: finding the rows
that run into a period from before it (``report_rollups.first_hour_ending_after``) reads
the month after the period start from the index alone (~2.5 ms of CPU instead of ~7).
Both are index-only once vacuum has set the visibility map, which autovacuum does.
PostgreSQL only (SQLite has no INCLUDE, and its report data are small). The price:
``sustained_us`` becomes an indexed column, so an update of a roll-up row is no longer a
heap-only (HOT) update.

Revision ID: incidents_0008
Revises: incidents_0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision: str = "incidents_0008"
down_revision: str | None = "incidents_0007"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"
INDEX = "ix_report_hours_hour_sustained_us"
MAX_END = "ix_report_hours_max_end"  # of incidents_0006
MAX_END_HOUR = "ix_report_hours_max_end_hour"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        INDEX, "report_hours", ["hour"], schema=SCHEMA, postgresql_include=["sustained_us"]
    )
    op.create_index(
        MAX_END_HOUR, "report_hours", ["max_end"], schema=SCHEMA, postgresql_include=["hour"]
    )
    op.drop_index(MAX_END, table_name="report_hours", schema=SCHEMA)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(MAX_END, "report_hours", ["max_end"], schema=SCHEMA)
    op.drop_index(MAX_END_HOUR, table_name="report_hours", schema=SCHEMA)
    op.drop_index(INDEX, table_name="report_hours", schema=SCHEMA)
