"""The roll-up fast path of the reliability report (``report_rollup_sums``, triggers of
migration incidents_0006) against the row-wise SQL sums and the pure functions, on a
generated history that is then edited the way the state store edits it (rows closed,
moved to another incident, re-flagged, deleted), on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.common.db import create_engine
from services.common.migrate import migrate, migrate_engine
from services.common.policy import Policy, load_policy
from services.incidents import orm
from services.incidents.report_data import reliability_from_records
from services.incidents.report_lanes import Lanes
from services.incidents.report_reliability import reliability_report_sql
from services.incidents.report_rollups import report_customer_months, report_months
from services.incidents.reports.policy_settings import ReportSettings
from services.incidents.reports.records import Period
from tests.integration.reports.report_history import insert_rows, insert_topology, interruption
from tests.integration.reports.test_report_data import assert_same

DATABASE = "outagedesk_rollups"
TZ = ZoneInfo("Asia/Shanghai")
CST = timezone(timedelta(hours=8))


async def _fresh_pg(url: str, database: str = DATABASE) -> str:
    """A freshly created and migrated database ``database`` on ``url``'s server."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        await conn.execute(f'drop database if exists "{database}" with (force)')
        await conn.execute(f'create database "{database}"')
    finally:
        await conn.close()
    own = make_url(url).set(database=database).render_as_string(hide_password=False)
    await migrate(own)
    return own


@pytest.fixture(scope="session")
def rollup_pg_url(pg_url: str) -> str:
    """A freshly migrated database of this module's own."""
    return asyncio.run(_fresh_pg(pg_url))


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """This module's PostgreSQL database, or in-memory SQLite."""
    if request.param == "sqlite":
        return "sqlite+aiosqlite://"
    url: str = request.getfixturevalue("rollup_pg_url")
    return url


@pytest.fixture
async def session(db_url: str) -> AsyncIterator[AsyncSession]:
    """A session on either backend whose writes are rolled back at the end."""
    url = db_url
    engine: AsyncEngine = create_engine(url)
    try:
        if url.startswith("sqlite"):
            await migrate_engine(engine)
        async with engine.connect() as conn:
            trans = await conn.begin()
            s = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
            try:
                yield s
            finally:
                await s.close()
                await trans.rollback()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


async def _generated_history(session: AsyncSession, seed: int) -> list[dict[str, Any]]:
    """40 customers, 15 months of random interruptions of every kind and length (some
    open, some days long, some across month and period bounds), a storm on 2026-06-10."""
    rng = random.Random(seed)
    customers = {f"C{n:03d}": rng.choice(("T1", "T2", "T3")) for n in range(40)}
    await insert_topology(session, customers)
    ids = [*customers, "GONE"]  # a customer no longer in the topology
    rows = []
    first = datetime(2025, 4, 1, tzinfo=UTC)
    for n in range(1800):
        start = first + timedelta(seconds=rng.randrange(0, 455 * 86400))
        length = rng.choice((1, 3, 5, 5.01, 6, 30, 60, 90, 120))
        length = 3000 if rng.random() < 0.02 else length  # days long, across bounds
        still_out = start >= datetime(2026, 6, 1, tzinfo=UTC) and rng.random() < 0.1
        end = None if still_out else start + timedelta(minutes=length)
        kind = rng.random()
        rows.append(
            interruption(f"INC-{n}", rng.choice(ids), start, end, planned=kind < 0.1,
                         momentary=0.1 <= kind < 0.25 and length <= 5)
        )  # fmt: skip
    storm = datetime(2026, 6, 10, 2, 30, tzinfo=UTC)
    for n, cid in enumerate(customers):
        rows.append(interruption(f"STORM-{n}", cid, storm, storm + timedelta(hours=72)))
    await insert_rows(session, orm.interruptions, rows)
    return rows


async def _edit(session: AsyncSession, rows: list[dict[str, Any]], seed: int) -> None:
    """Close, lengthen, re-flag, move and delete rows as the state store does."""
    rng = random.Random(seed)
    t = orm.interruptions
    for row in rng.sample(rows, 120):
        key = sa.and_(t.c.incident_id == row["incident_id"], t.c.customer_id == row["customer_id"])
        action = rng.choice(("close", "reopen", "planned", "move", "delete"))
        if action == "close":
            end = row["start"] + timedelta(minutes=rng.choice((2, 45, 600)))
            await session.execute(sa.update(t).where(key).values(end=end, end_source="meter"))
        elif action == "reopen":
            await session.execute(sa.update(t).where(key).values(end=None, end_source=None))
        elif action == "planned":
            await session.execute(sa.update(t).where(key).values(planned=sa.not_(t.c.planned)))
        elif action == "move":  # a nested incident takes the interruption over
            await session.execute(sa.delete(t).where(key))
            await insert_rows(session, t, [{**row, "incident_id": row["incident_id"] + "-N"}])
        else:
            await session.execute(sa.delete(t).where(key))


PERIODS = [
    (datetime(2026, 6, 1, tzinfo=CST), datetime(2026, 7, 1, tzinfo=CST)),  # local month
    (datetime(2025, 7, 1, tzinfo=CST), datetime(2026, 7, 1, tzinfo=CST)),  # local year
    (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),  # UTC month
    (datetime(2026, 5, 3, 5, 17, 9, tzinfo=UTC), datetime(2026, 6, 20, 11, 43, tzinfo=UTC)),
    (datetime(2026, 6, 9, 23, 30, tzinfo=UTC), datetime(2026, 6, 11, 0, 10, tzinfo=UTC)),
]


async def _report(
    session: AsyncSession, period: tuple[datetime, datetime], group_by: str, policy: Policy,
    rollups: bool,
) -> dict[str, Any]:  # fmt: skip
    settings = ReportSettings.from_policy(policy)
    return await reliability_report_sql(
        session, Period(*period), group_by=group_by, tz=TZ, cemi_n=1,
        rs1_targets=settings.rs1_targets, med_beta_multiplier=settings.med_beta_multiplier,
        med_history_years=settings.med_history_years, rollups=rollups,
    )  # fmt: skip


class TestRollupFastPath:
    @pytest.mark.parametrize("group_by", ["all", "area", "feeder", "substation"])
    async def test_equals_the_row_wise_sums_after_edits(
        self, session: AsyncSession, policy: Policy, group_by: str
    ) -> None:
        rows = await _generated_history(session, seed=11)
        await _edit(session, rows, seed=12)
        storm_seen = False
        for period in PERIODS:
            fast = await _report(session, period, group_by, policy, rollups=True)
            slow = await _report(session, period, group_by, policy, rollups=False)
            assert_same(fast, slow)
            storm_seen |= "2026-06-10" in fast["med"]["days"]
        assert storm_seen, "the storm should be a Major Event Day in some period"

    async def test_equals_the_pure_functions(self, session: AsyncSession, policy: Policy) -> None:
        await _generated_history(session, seed=5)
        start, end = PERIODS[0]
        fast = await build_fast(session, start, end, policy)
        reference = await reliability_from_records(session, start, end, "feeder", policy, tz=TZ)
        assert fast["groups"][0]["customer_interruptions"] > 0
        assert_same(fast, reference)

    async def test_triggers_keep_the_rollups_in_the_writing_transaction(
        self, session: AsyncSession
    ) -> None:
        await insert_topology(session)
        start = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)
        await insert_rows(session, orm.interruptions, [
            interruption("INC-1", "C1", start, start + timedelta(minutes=30)),
            interruption("INC-1", "C3", start, None),  # open: not rolled up yet
            interruption("INC-2", "C1", start, start + timedelta(minutes=3)),  # momentary
        ])  # fmt: skip
        m = report_months
        sums = (await session.execute(
            sa.select(sa.func.sum(m.c.sustained_n), sa.func.sum(m.c.sustained_us),
                      sa.func.sum(m.c.momentary_n), sa.func.sum(m.c.rows_n))
        )).one()  # fmt: skip
        assert tuple(sums) == (1, 30 * 60_000_000, 1, 2)
        t = orm.interruptions
        await session.execute(
            sa.update(t).where(t.c.customer_id == "C3").values(end=start + timedelta(hours=1))
        )
        await session.execute(sa.delete(t).where(t.c.incident_id == "INC-2"))
        sums = (await session.execute(
            sa.select(sa.func.sum(m.c.sustained_n), sa.func.sum(m.c.sustained_us),
                      sa.func.sum(m.c.momentary_n), sa.func.sum(m.c.rows_n))
        )).one()  # fmt: skip
        assert tuple(sums) == (2, 90 * 60_000_000, 0, 2)
        c = report_customer_months
        per_customer = dict(
            (await session.execute(
                sa.select(c.c.customer_id, sa.func.sum(c.c.sustained_n))
                .group_by(c.c.customer_id).having(sa.func.sum(c.c.sustained_n) != 0)
            )).all()
        )  # fmt: skip
        assert per_customer == {"C1": 1, "C3": 1}


async def build_fast(
    session: AsyncSession, start: datetime, end: datetime, policy: Policy
) -> dict[str, Any]:
    """The report as ``build_report`` gives it (roll-ups chosen for a whole-hour zone)."""
    settings = ReportSettings.from_policy(policy)
    return await reliability_report_sql(
        session, Period(start, end), group_by="feeder", tz=TZ, cemi_n=settings.cemi_n,
        rs1_targets=settings.rs1_targets, med_beta_multiplier=settings.med_beta_multiplier,
        med_history_years=settings.med_history_years,
    )  # fmt: skip


LANES_DATABASE = "outagedesk_report_lanes"


@pytest.fixture(scope="module")
def lanes_url(pg_url: str) -> str:
    """A database of its own holding a committed history (other connections see it)."""

    async def build() -> str:
        url = await _fresh_pg(pg_url, LANES_DATABASE)
        engine = create_engine(url)
        try:
            async with AsyncSession(engine) as s, s.begin():
                rows = await _generated_history(s, seed=21)
                await _edit(s, rows, seed=22)
        finally:
            await engine.dispose()
        return url

    return asyncio.run(build())


class TestReportLanes:
    @pytest.mark.parametrize("group_by", ["all", "area", "feeder"])
    async def test_two_connections_give_the_row_wise_report(
        self, lanes_url: str, policy: Policy, group_by: str
    ) -> None:
        engine = create_engine(lanes_url)
        try:
            storm_seen = False
            for period in PERIODS:
                async with AsyncSession(engine) as s:
                    assert Lanes(s).parallel  # fresh and engine-bound: the two-lane path
                    fast = await _report(s, period, group_by, policy, rollups=True)
                async with AsyncSession(engine) as s:
                    slow = await _report(s, period, group_by, policy, rollups=False)
                assert_same(fast, slow)
                storm_seen |= "2026-06-10" in fast["med"]["days"]
            assert storm_seen
        finally:
            await engine.dispose()

    async def test_a_session_in_a_transaction_keeps_to_its_own_connection(
        self, lanes_url: str
    ) -> None:
        engine = create_engine(lanes_url)
        try:
            async with AsyncSession(engine) as s:
                await s.execute(sa.text("SELECT 1"))
                assert not Lanes(s).parallel  # its uncommitted writes would be missed
        finally:
            await engine.dispose()
        async with AsyncSession(bind=None) as unbound:
            assert not Lanes(unbound).parallel
