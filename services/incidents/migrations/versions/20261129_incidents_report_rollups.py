"""incidents: reliability roll-ups kept by triggers on ``interruptions``

A year's reliability report summed three million interruption rows at report time. These
tables hold the sums of *closed* interruptions (an open one's length depends on the
report's as-of, so the report reads those few rows directly), keyed by the UTC hour or
month the interruption starts in and by the feeder, substation and area stamped on the row
(NULL stored as ''):

- ``report_hours`` / ``report_months``: unplanned sustained count and length (µs), planned
  sustained count and length, unplanned momentary count; ``report_hours.max_end`` bounds the
  latest end of the hour's rows (never lowered), so the report finds the rows that run past
  a period end without scanning the end index;
  and the number of closed rows (a group with any row is listed, as the row-wise report
  lists it);
- ``report_customer_months`` / ``report_customer_quarters``: unplanned sustained count per
  customer (CEMI_n, CAIFI); a year is four quarters instead of twelve months per customer.

Sustained/momentary are decided exactly as ``report_interruptions.measures`` decides them
(the same float minutes), lengths in integer microseconds so adding and removing rows
never drifts. Triggers keep the tables current in the writing transaction whoever writes
(state store, moves between incidents, bulk loaders, the group stamp): statement-level
with transition tables on PostgreSQL, row-level on SQLite. Existing rows are backfilled.

Revision ID: incidents_0006
Revises: incidents_0005
Create Date: 2026-11-29
"""

# ruff: noqa: S608 - every statement is built from constant text, no input
from __future__ import annotations

from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "incidents_0006"
down_revision: str | None = "incidents_0005"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "incidents"
KEYS = ("feeder_id", "substation", "area")
SUMS = ("sustained_n", "sustained_us", "planned_n", "planned_us", "momentary_n", "rows_n")
TRIGGERS = ("insert", "update", "delete")


def _key_columns(first: str) -> list[sa.Column[Any]]:
    return [
        sa.Column(first, sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(k, sa.Text(), nullable=False, server_default="") for k in KEYS),
    ]


def _sum_columns() -> list[sa.Column[Any]]:
    return [sa.Column(n, sa.BigInteger(), nullable=False, server_default="0") for n in SUMS]


# --- per-row measures, the same expressions as report_interruptions.measures -------------

PG_ROW = """
  date_trunc('hour', r.start, 'UTC') AS hour, date_trunc('month', r.start, 'UTC') AS month,
  date_trunc('quarter', r.start, 'UTC') AS quarter,
  coalesce(r.feeder_id, '') AS feeder_id, coalesce(r.substation, '') AS substation,
  coalesce(r.area, '') AS area, r.customer_id, r."end",
  (extract(epoch FROM r."end" - r.start) * 1000000)::bigint AS us,
  (NOT r.momentary AND CAST(extract(epoch FROM r."end" - r.start) AS float8) / 60.0 > 5.0)
      AS sus,
  r.planned"""
SQLITE_QUARTER = (
    "strftime('%Y-', {r}.start) || printf('%02d', "
    "(CAST(strftime('%m', {r}.start) AS INTEGER) - 1) / 3 * 3 + 1) || '-01 00:00:00.000000'"
)
SQLITE_SECONDS = "round((julianday({r}.\"end\") - julianday({r}.start)) * 86400.0, 3)"


def _pg_delta(source: str) -> str:
    """The signed rows of one statement's transition tables, as a CTE body."""
    parts = {"new": "SELECT 1 AS sign, {row} FROM new_rows r", "old": "SELECT -1 AS sign, {row} "
             "FROM old_rows r"}  # fmt: skip
    chosen = [parts[s].format(row=PG_ROW) for s in source.split("+")]
    inner = " UNION ALL ".join(chosen)
    return f"""SELECT d.*,
  CASE WHEN d.sus AND NOT d.planned THEN d.sign ELSE 0 END AS sn,
  CASE WHEN d.sus AND NOT d.planned THEN d.sign * d.us ELSE 0 END AS sus_us,
  CASE WHEN d.sus AND d.planned THEN d.sign ELSE 0 END AS pn,
  CASE WHEN d.sus AND d.planned THEN d.sign * d.us ELSE 0 END AS p_us,
  CASE WHEN NOT d.sus AND NOT d.planned THEN d.sign ELSE 0 END AS mn,
  d.sign AS an
FROM ({inner}) d WHERE d."end" IS NOT NULL"""


def _pg_statements(source: str) -> list[str]:
    """The three upserts applying one statement's transition tables to the roll-ups."""
    delta = _pg_delta(source)
    add = ", ".join(f"{n} = t.{n} + excluded.{n}" for n in SUMS)
    nonzero = " OR ".join(f"sum({c}) <> 0" for c in ("sn", "sus_us", "pn", "p_us", "mn", "an"))
    out = []
    for table, bucket, extra_sel, extra_set in (
        ("report_hours", "hour", ', max("end") FILTER (WHERE sign > 0)',
         ", max_end = greatest(t.max_end, excluded.max_end)"),
        ("report_months", "month", "", ""),
    ):  # fmt: skip
        extra_col = ", max_end" if extra_sel else ""
        having = f"{nonzero} OR count(*) FILTER (WHERE sign > 0) > 0" if extra_sel else nonzero
        out.append(f"""
    WITH d AS ({delta})
    INSERT INTO incidents.{table} AS t ({bucket}, feeder_id, substation, area,
        {", ".join(SUMS)}{extra_col})
    SELECT {bucket}, feeder_id, substation, area, sum(sn), sum(sus_us), sum(pn), sum(p_us),
           sum(mn), sum(an){extra_sel}
    FROM d GROUP BY {bucket}, feeder_id, substation, area HAVING {having}
    ORDER BY {bucket}, feeder_id, substation, area
    ON CONFLICT ({bucket}, feeder_id, substation, area) DO UPDATE SET {add}{extra_set}""")
    for table, bucket in (("report_customer_months", "month"),
                          ("report_customer_quarters", "quarter")):  # fmt: skip
        out.append(f"""
    WITH d AS ({delta})
    INSERT INTO incidents.{table} AS t
        ({bucket}, feeder_id, substation, area, customer_id, sustained_n)
    SELECT {bucket}, feeder_id, substation, area, customer_id, sum(sn)
    FROM d WHERE sn <> 0 GROUP BY {bucket}, feeder_id, substation, area, customer_id
    HAVING sum(sn) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({bucket}, feeder_id, substation, area, customer_id)
    DO UPDATE SET sustained_n = t.sustained_n + excluded.sustained_n""")
    return out


def _pg_apply(source: str) -> str:
    return "".join(s + ";" for s in _pg_statements(source))


PG_FUNCTION = f"""
CREATE FUNCTION incidents.report_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP = 'INSERT' THEN {_pg_apply("new")}
  ELSIF TG_OP = 'DELETE' THEN {_pg_apply("old")}
  ELSE {_pg_apply("old+new")}
  END IF;
  RETURN NULL;
END
$body$
"""

PG_REFERENCING = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}


def _sqlite_apply(r: str, sign: int) -> str:
    """Statements adding (sign 1) or removing (-1) row ``r`` (NEW or OLD) when closed."""
    secs = SQLITE_SECONDS.format(r=r)
    sus = f"(NOT {r}.momentary AND {secs} / 60.0 > 5.0)"
    us = f"CAST(round({secs} * 1000000.0) AS INTEGER)"
    hour = f"strftime('%Y-%m-%d %H:00:00.000000', {r}.start)"
    month = f"strftime('%Y-%m-01 00:00:00.000000', {r}.start)"
    quarter = SQLITE_QUARTER.format(r=r)
    keys = f"coalesce({r}.feeder_id, ''), coalesce({r}.substation, ''), coalesce({r}.area, '')"
    sums = (
        f"CASE WHEN {sus} AND NOT {r}.planned THEN {sign} ELSE 0 END, "
        f"CASE WHEN {sus} AND NOT {r}.planned THEN {sign} * {us} ELSE 0 END, "
        f"CASE WHEN {sus} AND {r}.planned THEN {sign} ELSE 0 END, "
        f"CASE WHEN {sus} AND {r}.planned THEN {sign} * {us} ELSE 0 END, "
        f"CASE WHEN NOT {sus} AND NOT {r}.planned THEN {sign} ELSE 0 END, {sign}"
    )
    add = ", ".join(f"{n} = {n} + excluded.{n}" for n in SUMS)
    closed = f'{r}."end" IS NOT NULL'
    max_end = f'{r}."end"' if sign > 0 else "NULL"
    return f"""
  INSERT INTO report_hours (hour, feeder_id, substation, area, {", ".join(SUMS)}, max_end)
  SELECT {hour}, {keys}, {sums}, {max_end} WHERE {closed}
  ON CONFLICT (hour, feeder_id, substation, area) DO UPDATE SET {add},
    max_end = CASE WHEN excluded.max_end IS NULL THEN max_end WHEN max_end IS NULL
                   THEN excluded.max_end ELSE max(max_end, excluded.max_end) END;
  INSERT INTO report_months (month, feeder_id, substation, area, {", ".join(SUMS)})
  SELECT {month}, {keys}, {sums} WHERE {closed}
  ON CONFLICT (month, feeder_id, substation, area) DO UPDATE SET {add};
  INSERT INTO report_customer_months
      (month, feeder_id, substation, area, customer_id, sustained_n)
  SELECT {month}, {keys}, {r}.customer_id, {sign}
  WHERE {closed} AND {sus} AND NOT {r}.planned
  ON CONFLICT (month, feeder_id, substation, area, customer_id)
  DO UPDATE SET sustained_n = sustained_n + excluded.sustained_n;
  INSERT INTO report_customer_quarters
      (quarter, feeder_id, substation, area, customer_id, sustained_n)
  SELECT {quarter}, {keys}, {r}.customer_id, {sign}
  WHERE {closed} AND {sus} AND NOT {r}.planned
  ON CONFLICT (quarter, feeder_id, substation, area, customer_id)
  DO UPDATE SET sustained_n = sustained_n + excluded.sustained_n;"""


def _sqlite_triggers() -> dict[str, str]:
    body = {
        "insert": _sqlite_apply("NEW", 1),
        "update": _sqlite_apply("OLD", -1) + _sqlite_apply("NEW", 1),
        "delete": _sqlite_apply("OLD", -1),
    }
    return {
        event: f"CREATE TRIGGER incidents.interruptions_report_{event} AFTER {event.upper()} "
        f"ON interruptions FOR EACH ROW BEGIN {body[event]}\nEND"
        for event in TRIGGERS
    }


# --- momentary rows chained to an earlier one of the same customer (not a MAIFIe event) ---

PG_MOMENTARY = (
    "NOT {r}.planned AND ({r}.momentary OR {r}.\"end\" - {r}.start <= interval '5 minutes')"
)
SQLITE_MOMENTARY = (
    "NOT {r}.planned AND ({r}.momentary OR ({r}.\"end\" IS NOT NULL AND "
    "round((julianday({r}.\"end\") - julianday({r}.start)) * 86400.0, 3) / 60.0 <= 5.0))"
)
PG_CHAINED = f"""EXISTS (SELECT 1 FROM incidents.interruptions p
  WHERE p.customer_id = r.customer_id AND {PG_MOMENTARY.format(r="p")}
    AND p.start <= r.start AND p.start >= r.start - interval '5 minutes'
    AND (p.start < r.start OR (p.start = r.start AND p.incident_id < r.incident_id)))"""
SQLITE_CHAINED = f"""EXISTS (SELECT 1 FROM interruptions p
  WHERE p.customer_id = r.customer_id AND {SQLITE_MOMENTARY.format(r="p")}
    AND p.start <= r.start
    AND round((julianday(r.start) - julianday(p.start)) * 86400.0, 3) / 60.0 <= 5.0
    AND (p.start < r.start OR (p.start = r.start AND p.incident_id < r.incident_id)))"""
CHAIN_COLUMNS = "incident_id, customer_id, start, feeder_id, substation, area"


def _pg_chain(source: str) -> str:
    """Recompute the chained rows of the customers' 5 minutes after each changed momentary
    row (a row inserted, removed or re-flagged changes only those)."""
    parts = {"new": "SELECT customer_id, start FROM new_rows r WHERE {m}",
             "old": "SELECT customer_id, start FROM old_rows r WHERE {m}"}  # fmt: skip
    w = " UNION ".join(parts[x].format(m=PG_MOMENTARY.format(r="r")) for x in source.split("+"))
    return f"""
    DELETE FROM incidents.report_momentary_chained c USING ({w}) w
    WHERE c.customer_id = w.customer_id AND c.start >= w.start
      AND c.start <= w.start + interval '5 minutes';
    INSERT INTO incidents.report_momentary_chained ({CHAIN_COLUMNS})
    SELECT DISTINCT r.incident_id, r.customer_id, r.start, r.feeder_id, r.substation, r.area
    FROM incidents.interruptions r JOIN ({w}) w ON r.customer_id = w.customer_id
      AND r.start >= w.start AND r.start <= w.start + interval '5 minutes'
    WHERE {PG_MOMENTARY.format(r="r")} AND {PG_CHAINED}
    ON CONFLICT DO NOTHING;"""


PG_CHAIN_FUNCTION = f"""
CREATE FUNCTION incidents.report_chain_apply() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP = 'INSERT' THEN {_pg_chain("new")}
  ELSIF TG_OP = 'DELETE' THEN {_pg_chain("old")}
  ELSE {_pg_chain("old+new")}
  END IF;
  RETURN NULL;
END
$body$
"""


def _sqlite_chain(r: str) -> str:
    bound = f"strftime('%Y-%m-%d %H:%M:%f', {r}.start, '+5 minutes') || '999'"
    return f"""
  DELETE FROM report_momentary_chained WHERE customer_id = {r}.customer_id
    AND start >= {r}.start AND start <= {bound};
  INSERT OR IGNORE INTO report_momentary_chained ({CHAIN_COLUMNS})
  SELECT r.incident_id, r.customer_id, r.start, r.feeder_id, r.substation, r.area
  FROM interruptions r WHERE r.customer_id = {r}.customer_id
    AND r.start >= {r}.start AND r.start <= {bound}
    AND {SQLITE_MOMENTARY.format(r="r")} AND {SQLITE_CHAINED};"""


def _sqlite_chain_triggers() -> list[str]:
    when = {r: SQLITE_MOMENTARY.format(r=r) for r in ("NEW", "OLD")}
    return [
        "CREATE TRIGGER incidents.interruptions_chain_insert AFTER INSERT ON interruptions "
        f"FOR EACH ROW WHEN {when['NEW']} BEGIN {_sqlite_chain('NEW')}\nEND",
        "CREATE TRIGGER incidents.interruptions_chain_delete AFTER DELETE ON interruptions "
        f"FOR EACH ROW WHEN {when['OLD']} BEGIN {_sqlite_chain('OLD')}\nEND",
        "CREATE TRIGGER incidents.interruptions_chain_update AFTER UPDATE ON interruptions "
        f"FOR EACH ROW WHEN ({when['OLD']}) OR ({when['NEW']}) "
        f"BEGIN {_sqlite_chain('OLD')}{_sqlite_chain('NEW')}\nEND",
    ]


# --- backfill: the closed rows already stored, as one big "insert" ------------------------


def _backfill_pg(bind: sa.Connection) -> None:
    # A month per statement keeps each under the driver's command timeout on a big table;
    # every bucket lies inside one month, so the batches never meet.
    source = "(SELECT * FROM incidents.interruptions WHERE start >= :lo AND start < :hi) r"
    statements = [s.replace("new_rows r", source) for s in _pg_statements("new")]
    first = bind.execute(sa.text("SELECT min(start) FROM incidents.interruptions")).scalar()
    lo = None if first is None else first.astimezone(UTC).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    last = bind.execute(sa.text("SELECT max(start) FROM incidents.interruptions")).scalar()
    while lo is not None and last is not None and lo <= last:
        hi = lo.replace(year=lo.year + lo.month // 12, month=lo.month % 12 + 1)
        for statement in statements:
            bind.execute(sa.text(statement), {"lo": lo, "hi": hi})
        lo = hi


def _backfill_sqlite() -> list[str]:
    secs = SQLITE_SECONDS.format(r="r")
    sus = f"(NOT r.momentary AND {secs} / 60.0 > 5.0)"
    us = f"CAST(round({secs} * 1000000.0) AS INTEGER)"
    keys = "coalesce(r.feeder_id, ''), coalesce(r.substation, ''), coalesce(r.area, '')"
    sums = (
        f"sum(CASE WHEN {sus} AND NOT r.planned THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {sus} AND NOT r.planned THEN {us} ELSE 0 END), "
        f"sum(CASE WHEN {sus} AND r.planned THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {sus} AND r.planned THEN {us} ELSE 0 END), "
        f"sum(CASE WHEN NOT {sus} AND NOT r.planned THEN 1 ELSE 0 END), count(*)"
    )
    hour = "strftime('%Y-%m-%d %H:00:00.000000', r.start)"
    month = "strftime('%Y-%m-01 00:00:00.000000', r.start)"
    src = 'FROM incidents.interruptions r WHERE r."end" IS NOT NULL'
    return [
        f"INSERT INTO incidents.report_hours (hour, feeder_id, substation, area, "
        f'{", ".join(SUMS)}, max_end) SELECT {hour}, {keys}, {sums}, max(r."end") {src} '
        "GROUP BY 1, 2, 3, 4",
        f"INSERT INTO incidents.report_months (month, feeder_id, substation, area, "
        f"{', '.join(SUMS)}) SELECT {month}, {keys}, {sums} {src} GROUP BY 1, 2, 3, 4",
        "INSERT INTO incidents.report_customer_months (month, feeder_id, substation, area, "
        f"customer_id, sustained_n) SELECT {month}, {keys}, r.customer_id, count(*) {src} "
        f"AND {sus} AND NOT r.planned GROUP BY 1, 2, 3, 4, 5",
        "INSERT INTO incidents.report_customer_quarters (quarter, feeder_id, substation, "
        f"area, customer_id, sustained_n) SELECT {SQLITE_QUARTER.format(r='r')}, {keys}, "
        f"r.customer_id, count(*) {src} AND {sus} AND NOT r.planned GROUP BY 1, 2, 3, 4, 5",
    ]


def upgrade() -> None:
    op.create_table(
        "report_momentary_chained",
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(k, sa.Text(), nullable=True) for k in KEYS),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name="pk_report_momentary_chained"),
        schema=SCHEMA,
    )
    op.create_index("ix_report_momentary_chained_customer_id_start", "report_momentary_chained",
                    ["customer_id", "start"], schema=SCHEMA)  # fmt: skip
    op.create_index("ix_report_momentary_chained_start", "report_momentary_chained", ["start"],
                    schema=SCHEMA)  # fmt: skip
    op.create_table(
        "report_hours",
        *_key_columns("hour"),
        *_sum_columns(),
        sa.Column("max_end", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("hour", *KEYS, name="pk_report_hours"),
        schema=SCHEMA,
    )
    # Finds the rows running past a period bound (report_rollups.first_hour_ending_after).
    op.create_index("ix_report_hours_max_end", "report_hours", ["max_end"], schema=SCHEMA)
    op.create_table(
        "report_months",
        *_key_columns("month"),
        *_sum_columns(),
        sa.PrimaryKeyConstraint("month", *KEYS, name="pk_report_months"),
        schema=SCHEMA,
    )
    op.create_table(
        "report_customer_months",
        *_key_columns("month"),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("sustained_n", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint(
            "month", *KEYS, "customer_id", name="pk_report_customer_months"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "report_customer_quarters",
        *_key_columns("quarter"),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("sustained_n", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint(
            "quarter", *KEYS, "customer_id", name="pk_report_customer_quarters"
        ),
        schema=SCHEMA,
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _backfill_pg(bind)
        op.execute(
            f"INSERT INTO incidents.report_momentary_chained ({CHAIN_COLUMNS}) "
            f"SELECT {CHAIN_COLUMNS} FROM incidents.interruptions r "
            f"WHERE {PG_MOMENTARY.format(r='r')} AND {PG_CHAINED}"
        )
        op.execute(PG_FUNCTION)
        op.execute(PG_CHAIN_FUNCTION)
        for event in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER interruptions_chain_{event} AFTER {event.upper()} "
                f"ON incidents.interruptions {PG_REFERENCING[event]} FOR EACH STATEMENT "
                "EXECUTE FUNCTION incidents.report_chain_apply()"
            )
            op.execute(
                f"CREATE TRIGGER interruptions_report_{event} AFTER {event.upper()} "
                f"ON incidents.interruptions {PG_REFERENCING[event]} FOR EACH STATEMENT "
                "EXECUTE FUNCTION incidents.report_rollup_apply()"
            )
        op.execute("ANALYZE incidents.report_hours")
        op.execute("ANALYZE incidents.report_months")
        op.execute("ANALYZE incidents.report_customer_months")
        op.execute("ANALYZE incidents.report_customer_quarters")
    else:
        for statement in _backfill_sqlite():
            op.execute(statement)
        op.execute(
            f"INSERT INTO incidents.report_momentary_chained ({CHAIN_COLUMNS}) "
            f"SELECT {CHAIN_COLUMNS} FROM incidents.interruptions r "
            f"WHERE {SQLITE_MOMENTARY.format(r='r')} AND "
            + SQLITE_CHAINED.replace("FROM interruptions p", "FROM incidents.interruptions p")
        )
        for statement in [*_sqlite_triggers().values(), *_sqlite_chain_triggers()]:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in TRIGGERS:
        for kind in ("report", "chain"):
            if postgres:
                op.execute(f"DROP TRIGGER interruptions_{kind}_{event} ON incidents.interruptions")
            else:
                op.execute(f"DROP TRIGGER incidents.interruptions_{kind}_{event}")
    if postgres:
        op.execute("DROP FUNCTION incidents.report_rollup_apply()")
        op.execute("DROP FUNCTION incidents.report_chain_apply()")
    for table in ("report_momentary_chained", "report_customer_quarters",
                  "report_customer_months", "report_months", "report_hours"):  # fmt: skip
        op.drop_table(table, schema=SCHEMA)
