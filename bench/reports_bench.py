"""Benchmark (not a test): reliability reports over a year of history for 1,000,000 customers.

Generates straight into PostgreSQL with ``generate_series`` (a database of its own,
``outagedesk_bench_reports`` by default; nothing else is touched):
500 feeders (50 substations, urban/rural/remote), 5,000 devices, 100,000 transformers,
1,000,000 customers, ≈150,000 incidents over the year 2025-07-01 → 2026-07-01 (Asia/Shanghai)
and ≈3,000,000 customer interruptions (15 % momentary, 5 % planned, a few still open).
Then times ``build_report`` for the whole year by feeder (aim ≤ 1 s) and for June 2026 by
area (aim ≤ 300 ms; 11 months of history feed its Major Event Day threshold).

    python bench/reports_bench.py [--database-url URL] [--runs 5] [--reuse] [--compare]
                                  [--phases]

Closed interruptions are read from the roll-up tables that triggers keep (migration
incidents_0006); ``--reuse`` migrates the existing database first (backfilling them once,
adding the report_hours history index of incidents_0008) and vacuums the roll-ups so
index-only scans work. ``--compare`` also times the row-wise SQL path and checks both give
the same report. ``--phases`` prints each statement of the last run of each case with its
wall time and connection (the report runs two connections side by side on PostgreSQL);
``--one-connection`` keeps every report on one connection, to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.db import create_engine  # noqa: E402
from services.common.migrate import migrate  # noqa: E402
from services.common.policy import Policy, load_policy  # noqa: E402
from services.incidents.report_data import build_report  # noqa: E402
from services.incidents.report_reliability import reliability_report_sql  # noqa: E402
from services.incidents.reports.policy_settings import ReportSettings  # noqa: E402
from services.incidents.reports.records import Period  # noqa: E402

DEFAULT_URL = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"
DATABASE = "outagedesk_bench_reports"
TZ = ZoneInfo("Asia/Shanghai")
YEAR_START = datetime(2025, 7, 1, tzinfo=TZ)
YEAR_END = datetime(2026, 7, 1, tzinfo=TZ)
MONTH_START = datetime(2026, 6, 1, tzinfo=TZ)

TOPOLOGY_SQL = """
insert into topology.feeders (id, name, substation, area)
select 'F' || lpad(f::text, 4, '0'), 'Feeder ' || f, 'S' || lpad((f % 50)::text, 2, '0'),
       case when f % 10 < 6 then 'urban' when f % 10 < 9 then 'rural' else 'remote' end
from generate_series(0, 499) f;
insert into topology.devices (id, feeder, parent, kind)
select 'F' || lpad(f::text, 4, '0') || case when k = 0 then '-BKR' else '-FU' || k end,
       'F' || lpad(f::text, 4, '0'),
       case when k = 0 then null else 'F' || lpad(f::text, 4, '0') || '-BKR' end,
       case when k = 0 then 'breaker' else 'fuse' end
from generate_series(0, 499) f, generate_series(0, 9) k;
insert into topology.transformers (id, device, nominal_v, phases, area)
select 'T' || lpad(t::text, 6, '0'),
       'F' || lpad((t % 500)::text, 4, '0') || '-FU' || (1 + (t / 500) % 9),
       220, 1, case when t % 17 = 0 then 'rural' end
from generate_series(0, 99999) t;
insert into topology.customers (id, meter, transformer, class, critical, member, language,
                                quiet_hours, sms, email, wechat, webhook)
select 'C' || lpad(c::text, 7, '0'), 'M' || lpad(c::text, 7, '0'),
       'T' || lpad((c % 100000)::text, 6, '0'), 'residential', false, false, 'zh-CN',
       null, null, null, null, null
from generate_series(0, 999999) c;
insert into topology.meta (id, version, loaded_at) values (1, 1, now());
"""

# Feeder f gets incidents k = f + 500 j; every 20th j is planned (5 % on every feeder).
# Customer c sits on transformer c % 100000, whose feeder is (c % 100000) % 500 = c % 500:
# feeder f serves customers f, f + 500, f + 1000, … (2,000 of them).
INCIDENTS_SQL = """
insert into incidents.incidents (id, kind, status, feeder_id, area, detected_at,
    customers_affected, customers_out, customer_minutes, etr_slips, seq, version, sla,
    snapshot, updated_at, restored_at)
select 'INC-' || k, case when (k / 500) % 20 = 0 then 'planned' else 'outage' end,
       case when k % 7 = 0 then 'momentary' else 'closed' end,
       'F' || lpad((k % 500)::text, 4, '0'), 'urban', d, 1 + (k * 7919) % 39, 0, 0, 0, 1, 1,
       '{}'::jsonb, '{}'::jsonb, d, d + interval '1 hour'
from (select k, timestamptz '2025-06-30 16:00:00+00'
             + (((k::bigint * 2654435761) % 525600) * interval '1 minute') as d
      from generate_series(1, 150000) k) s;
"""

# Each row carries its customer's feeder, substation and area, as the state store stamps
# them (a transformer's own area overrides its feeder's).
INTERRUPTIONS_SQL = """
insert into incidents.interruptions (incident_id, customer_id, start, start_source, "end",
    end_source, unverified, momentary, planned, feeder_id, substation, area)
select r.incident_id, r.customer_id, r.start, 'meter', r."end", 'meter', false, r.momentary,
       r.planned, f.id, f.substation, coalesce(t.area, f.area)
from (select i.id as incident_id,
             'C' || lpad(((i.feeder_n + 500 * ((i.k * 37 + s * 7) % 2000)))::text, 7, '0')
                 as customer_id,
             i.detected_at as start,
             case when i.k % 997 = 0 and i.detected_at > timestamptz '2026-06-20 00:00:00+00'
                  then null
                  when i.status = 'momentary' then i.detected_at + interval '2 minutes'
                  when i.kind = 'planned' then i.detected_at + interval '4 hours'
                  else i.detected_at + ((2 + ((i.k * 31 + s * 13) % 400)) * interval '1 minute')
             end as "end",
             i.status = 'momentary' as momentary, i.kind = 'planned' as planned
      from (select id, kind, status, detected_at, customers_affected,
                   substr(id, 5)::int as k, substr(feeder_id, 2)::int as feeder_n
            from incidents.incidents) i,
           lateral generate_series(1, i.customers_affected) s) r
join topology.customers c on c.id = r.customer_id
join topology.transformers t on t.id = c.transformer
join topology.devices d on d.id = t.device
join topology.feeders f on f.id = d.feeder;
"""


async def _recreate(url: str) -> str:
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        await conn.execute(f'drop database if exists "{DATABASE}" with (force)')
        await conn.execute(f'create database "{DATABASE}"')
    finally:
        await conn.close()
    own = make_url(url).set(database=DATABASE).render_as_string(hide_password=False)
    await migrate(own)
    return own


async def _generate(url: str) -> None:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain, timeout=10, command_timeout=3600)
    try:
        for label, sql in (
            ("topology (1,000,000 customers)", TOPOLOGY_SQL),
            ("incidents", INCIDENTS_SQL),
            ("interruptions", INTERRUPTIONS_SQL),
        ):
            began = time.perf_counter()
            await conn.execute(sql)
            print(f"  generated {label} in {time.perf_counter() - began:.1f} s")  # noqa: T201
        began = time.perf_counter()
        await conn.execute("vacuum analyze")
        print(f"  vacuum analyze in {time.perf_counter() - began:.1f} s")  # noqa: T201
        counts = await conn.fetchrow(
            "select (select count(*) from incidents.incidents) as incidents,"
            " (select count(*) from incidents.interruptions) as interruptions,"
            " (select count(*) from topology.customers) as customers"
        )
        print(f"  rows: {dict(counts)}")  # noqa: T201
    finally:
        await conn.close()


async def _row_wise(
    session: AsyncSession, start: datetime, end: datetime, group_by: str, policy: Policy
) -> dict[str, Any]:
    """The same report summing every overlapping row (no roll-ups), for --compare."""
    settings = ReportSettings.from_policy(policy)
    return await reliability_report_sql(
        session, Period(start, end), group_by=group_by, tz=TZ, cemi_n=settings.cemi_n,
        rs1_targets=settings.rs1_targets, med_beta_multiplier=settings.med_beta_multiplier,
        med_history_years=settings.med_history_years, rollups=False,
    )  # fmt: skip


def _differences(a: Any, b: Any, path: str = "$") -> list[str]:
    if isinstance(a, float) or isinstance(b, float):
        same = isinstance(a, int | float) and isinstance(b, int | float)
        return [] if same and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [path]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for n, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _differences(x, y, f"{path}[{n}]")]  # fmt: skip
    return [] if a == b else [path]


ROLLUPS = (
    "incidents.report_hours, incidents.report_months, incidents.report_customer_months, "
    "incidents.report_customer_quarters, incidents.report_momentary_chained"
)


async def _vacuum_rollups(url: str) -> None:
    """Set the visibility map of the roll-ups (a migration's backfill or new index leaves
    it to autovacuum) so the report's index-only scans do not visit the heap."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain, timeout=10, command_timeout=3600)
    try:
        await conn.execute(f"vacuum analyze {ROLLUPS}")
    finally:
        await conn.close()


class _Phases:
    """Each statement's start, wall time and connection, from engine events."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, int, str]] = []
        self.t0 = time.perf_counter()

    def attach(self, engine: Any) -> None:
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def _before(conn: Any, _c: Any, _s: str, _p: Any, _x: Any, _m: bool) -> None:
            conn.info["began"] = time.perf_counter()

        @event.listens_for(sync, "after_cursor_execute")
        def _after(conn: Any, _c: Any, statement: str, _p: Any, _x: Any, _m: bool) -> None:
            began = conn.info.pop("began", time.perf_counter())
            text = " ".join(statement.split())
            self.rows.append((began - self.t0, time.perf_counter() - began, id(conn), text))

    def reset(self) -> None:
        self.rows.clear()
        self.t0 = time.perf_counter()

    def show(self) -> None:
        lanes: dict[int, int] = {}
        for at, took, conn, statement in self.rows:
            lane = lanes.setdefault(conn, len(lanes))
            print(f"    +{at * 1000:6.1f} ms  {took * 1000:6.1f} ms  lane {lane}  {statement[:90]}")  # noqa: T201


async def _time(url: str, runs: int, compare: bool, phases: bool, one: bool) -> None:
    policy = load_policy()
    engine = create_engine(url)
    log = _Phases()
    if phases:
        log.attach(engine)
    try:
        cases = (
            ("year by feeder", YEAR_START, YEAR_END, "feeder", 1.0),
            ("month by area", MONTH_START, YEAR_END, "area", 0.3),
        )
        for label, start, end, group_by, aim in cases:
            times = []
            report: dict[str, Any] = {}
            for _ in range(runs):
                log.reset()
                async with AsyncSession(engine) as session:
                    if one:  # a session already in a transaction keeps to its connection
                        await session.execute(text("SELECT 1"))
                    began = time.perf_counter()
                    report = await build_report(
                        session, "reliability", start, end, group_by, policy, end
                    )
                    times.append(time.perf_counter() - began)
            first = max(report["groups"], key=lambda g: g["saifi"] or 0.0)
            print(  # noqa: T201
                f"{label}: median {statistics.median(times) * 1000:.0f} ms, best "
                f"{min(times) * 1000:.0f} ms over {runs} runs (aim ≤ {aim * 1000:.0f} ms); "
                f"{len(report['groups'])} groups, MEDs {report['med']['days']}, "
                f"{first['key']}: SAIFI {first['saifi']:.3f} SAIDI {first['saidi']:.1f} min"
            )
            if phases:
                log.show()
            if compare:
                async with AsyncSession(engine) as session:
                    began = time.perf_counter()
                    reference = await _row_wise(session, start, end, group_by, policy)
                    took = time.perf_counter() - began
                diff = _differences(report, reference)
                verdict = "identical" if not diff else f"DIFFERENT at {diff[:5]}"
                print(f"  row-wise SQL path: {took * 1000:.0f} ms, {verdict}")  # noqa: T201
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="server to create the DB on")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="skip generation (data exists)")
    parser.add_argument(
        "--compare", action="store_true", help="also time the row-wise path, check equality"
    )
    parser.add_argument(
        "--phases", action="store_true", help="print the last run's statements and times"
    )
    parser.add_argument(
        "--one-connection", action="store_true",
        help="keep each report on one connection (no second lane), for comparison",
    )
    args = parser.parse_args()
    url = make_url(args.database_url).set(database=DATABASE).render_as_string(
        hide_password=False
    )
    if not args.reuse:
        print(f"generating into {DATABASE} …")  # noqa: T201
        began = time.perf_counter()
        url = asyncio.run(_recreate(args.database_url))
        asyncio.run(_generate(url))
        print(f"generated in {time.perf_counter() - began:.1f} s")  # noqa: T201
    else:
        began = time.perf_counter()
        asyncio.run(migrate(url))  # the first time: creates and backfills the roll-ups
        asyncio.run(_vacuum_rollups(url))
        print(f"migrated and vacuumed in {time.perf_counter() - began:.1f} s")  # noqa: T201
    asyncio.run(_time(url, args.runs, args.compare, args.phases, args.one_connection))


if __name__ == "__main__":
    main()
