"""``build_report`` on PostgreSQL (own database ``outagedesk_r``) and SQLite: hand-computed
figures on a small history, the SQL fast path against the pure functions, and the CLI."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typer.testing import CliRunner

from services.common.db import create_engine
from services.common.migrate import migrate, migrate_engine
from services.common.policy import Policy, load_policy
from services.incidents import orm
from services.incidents.report_data import build_report, reliability_from_records
from tests.integration.reports.report_history import (
    JULY_END,
    JULY_START,
    at,
    insert_history,
    insert_rows,
    insert_topology,
    interruption,
)

DATABASE = "outagedesk_r"
NOW = datetime(2026, 9, 1, tzinfo=UTC)
PERIOD_MIN = 31 * 1440


async def _fresh_pg(url: str) -> str:
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE):
            await conn.execute(f'create database "{DATABASE}"')
    finally:
        await conn.close()
    own = make_url(url).set(database=DATABASE).render_as_string(hide_password=False)
    plain = make_url(own).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain, timeout=10)
    try:
        for schema in ("topology", "ingest", "incidents", "notify"):
            await conn.execute(f'drop schema if exists "{schema}" cascade')
    finally:
        await conn.close()
    await migrate(own)
    return own


@pytest.fixture(scope="session")
def report_pg_url(pg_url: str) -> str:
    """A freshly migrated database of this suite's own."""
    return asyncio.run(_fresh_pg(pg_url))


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test body on PostgreSQL (rolled back per test) and in-memory SQLite."""
    if request.param == "sqlite":
        return "sqlite+aiosqlite://"
    url: str = request.getfixturevalue("report_pg_url")
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated database without report data."""
    instance = create_engine(db_url)
    try:
        if db_url.startswith("sqlite"):
            await migrate_engine(instance)
        yield instance
    finally:
        await instance.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose writes are rolled back at the end of the test."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        s = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield s
        finally:
            await s.close()
            await trans.rollback()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def _group(report: dict[str, Any], key: str) -> dict[str, Any]:
    matches = [g for g in report["groups"] if g["key"] == key]
    assert len(matches) == 1, report["groups"]
    found: dict[str, Any] = matches[0]
    return found


def assert_same(a: Any, b: Any, path: str = "$") -> None:
    """Deep equality, floats to 1e-9 relative (the SQL sums add in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float), path
        assert isinstance(b, int | float), path
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict), path
        assert a.keys() == b.keys(), f"{path}: {a.keys()} != {b.keys()}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list), path
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{n}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


class TestReliabilityReport:
    async def test_hand_computed_system_figures(
        self, session: AsyncSession, policy: Policy
    ) -> None:
        await insert_history(session)
        report = await build_report(
            session, "reliability", JULY_START, JULY_END, "all", policy, NOW
        )
        g = _group(report, "all")
        # sustained unplanned: C1 60 + C2 90 (nested, once) + C1 40 + C3 120 started in July,
        # plus 60 July minutes of C4's interruption that started in June
        assert g["customers_served"] == 5
        assert g["customer_interruptions"] == 4
        assert g["customer_minutes"] == pytest.approx(370.0)
        assert g["customers_interrupted"] == 3
        assert g["saifi"] == pytest.approx(0.8)
        assert g["saidi"] == pytest.approx(74.0)
        assert g["caidi"] == pytest.approx(92.5)
        assert g["caifi"] == pytest.approx(4 / 3)
        assert g["asai"] == pytest.approx(1 - 370 / (5 * PERIOD_MIN))
        assert g["maifi"] == pytest.approx(0.4)
        assert g["maifi_e"] == pytest.approx(0.4)
        assert g["cemi"] == pytest.approx(0.0)
        assert g["planned"]["customer_interruptions"] == 1
        assert g["planned"]["customer_minutes"] == pytest.approx(240.0)
        aihc1 = (370 + 240) / 60 / 5
        assert g["aihc1"] == pytest.approx(aihc1)
        assert g["rs1"] == pytest.approx((1 - aihc1 / (31 * 24)) * 100)
        assert g["aitc1"] == pytest.approx(1.0)
        assert g["med_days"] == []
        assert len(report["daily_saidi"]) == 31
        assert report["daily_saidi"][1] == {"date": "2026-07-02", "saidi": 30.0, "med": False}

    async def test_grouped_by_feeder_and_area(self, session: AsyncSession, policy: Policy) -> None:
        await insert_history(session)
        by_feeder = await build_report(
            session, "reliability", JULY_START, JULY_END, "feeder", policy, NOW
        )
        assert [g["key"] for g in by_feeder["groups"]] == ["F1", "F2"]
        f1, f2 = _group(by_feeder, "F1"), _group(by_feeder, "F2")
        assert (f1["customers_served"], f1["customer_interruptions"]) == (3, 3)
        assert f1["customer_minutes"] == pytest.approx(190.0)
        assert f1["planned"]["customer_minutes"] == pytest.approx(240.0)
        assert (f2["customers_served"], f2["customer_interruptions"]) == (2, 1)
        assert f2["customer_minutes"] == pytest.approx(180.0)
        assert f2["maifi"] == pytest.approx(1.0)
        assert f2["target_rs1"] == 99.8
        assert f1["target_rs1"] is None
        by_area = await build_report(
            session, "reliability", JULY_START, JULY_END, "area", policy, NOW
        )
        urban, rural = _group(by_area, "urban"), _group(by_area, "rural")
        assert (urban["customers_served"], urban["customer_interruptions"]) == (2, 3)
        assert (rural["customers_served"], rural["customer_interruptions"]) == (3, 1)
        assert rural["maifi"] == pytest.approx(2 / 3)
        assert rural["planned"]["customer_interruptions"] == 1
        assert urban["target_rs1"] == 99.9

    @pytest.mark.parametrize("group_by", ["all", "area", "feeder", "substation"])
    async def test_sql_sums_equal_the_pure_functions(
        self, session: AsyncSession, policy: Policy, group_by: str
    ) -> None:
        await _random_history(session, seed=7)
        start, end = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
        fast = await build_report(session, "reliability", start, end, group_by, policy, NOW)
        reference = await reliability_from_records(session, start, end, group_by, policy)
        assert fast["med"]["threshold_min"] is not None  # the history was long enough
        assert fast["med"]["days"], "the storm day should be a Major Event Day"
        assert_same(fast, reference)
        served = [g for g in fast["groups"] if g["customers_served"]]
        for g in served:  # every served customer was out in the storm
            assert g["excluding_med"]["customer_minutes"] < g["customer_minutes"]
        assert "unknown" in {g["key"] for g in fast["groups"]} or group_by == "all"


async def _random_history(session: AsyncSession, seed: int) -> None:
    """30 customers, two years of random interruptions (some still open in June 2026, the
    period) and a storm on 2026-06-10."""
    rng = random.Random(seed)
    transformers = ("T1", "T2", "T3")
    customers = {f"C{n:03d}": rng.choice(transformers) for n in range(30)}
    await insert_topology(session, customers)
    ids = [*customers, "GONE"]  # a customer no longer in the topology
    rows = []
    first = datetime(2024, 7, 1, tzinfo=UTC)
    for n in range(1500):
        start = first + timedelta(minutes=rng.randrange(0, 2 * 365 * 1440))
        length = rng.choice((1, 3, 5, 6, 30, 90, 300))
        still_out = start.month == 6 and start.year == 2026 and rng.random() < 0.1
        end = None if still_out else start + timedelta(minutes=length)
        kind = rng.random()
        momentary = 0.1 <= kind < 0.25 and length <= 5
        rows.append(
            interruption(f"INC-{n}", rng.choice(ids), start, end, planned=kind < 0.1,
                         momentary=momentary)
        )  # fmt: skip
    storm = datetime(2026, 6, 10, 2, tzinfo=UTC)
    for n, cid in enumerate(customers):
        rows.append(interruption(f"STORM-{n}", cid, storm, storm + timedelta(hours=20)))
    await insert_rows(session, orm.interruptions, rows)


class TestSlaReport:
    async def test_hand_computed_targets(self, session: AsyncSession, policy: Policy) -> None:
        await insert_history(session)
        report = await build_report(session, "sla", JULY_START, JULY_END, "all", policy, NOW)
        targets = {t["target"]: t for t in report["targets"]}
        expected = {  # (count, met, breaches)
            "acknowledge": (4, 3, ["INC-C"]),
            "on_site": (4, 3, ["INC-B"]),
            "restore_after_arrival": (3, 3, []),
            "restore_overall": (4, 4, []),
            "first_notice": (4, 3, ["INC-C"]),
            "planned_notice": (1, 0, ["INC-E"]),
        }
        got = {k: (t["count"], t["met"], t["breaches"]) for k, t in targets.items()}
        assert got == expected
        assert targets["acknowledge"]["p50_min"] == pytest.approx(3.0)  # 2, 2, 4, 20
        assert targets["first_notice"]["p50_min"] == pytest.approx(9.0)  # -60, 9, 14
        assert report["customers"] == {
            "affected": 4, "restored_within_commitment": 4, "pct": 100.0, "pending": 0,
        }  # fmt: skip


class TestVoltageReport:
    async def test_qualified_rate_by_area(self, session: AsyncSession, policy: Policy) -> None:
        await insert_history(session)
        everything = await build_report(session, "voltage", JULY_START, JULY_END, "all", policy)
        g = _group(everything, "all")
        assert g["monitoring_points"] == 2
        assert g["minutes_monitored"] == pytest.approx(4320.0)
        assert g["minutes_out_of_band"] == pytest.approx(174.0)
        assert g["qualified_rate"] == pytest.approx((1 - 174 / 4320) * 100)
        assert g["sags"] == {"instantaneous": 3}
        assert g["swells"] == {"momentary": 1}
        by_area = await build_report(session, "voltage", JULY_START, JULY_END, "area", policy)
        assert _group(by_area, "rural")["qualified_rate"] == pytest.approx(90.0)
        assert _group(by_area, "urban")["qualified_rate"] == pytest.approx((1 - 30 / 2880) * 100)
        by_substation = await build_report(
            session, "voltage", JULY_START, JULY_END, "substation", policy
        )
        assert [g["key"] for g in by_substation["groups"]] == ["S1", "S2"]


class TestSatisfactionReport:
    async def test_hand_computed_figures(self, session: AsyncSession, policy: Policy) -> None:
        await insert_history(session)
        report = await build_report(
            session, "satisfaction", JULY_START, JULY_END, "all", policy, NOW
        )
        assert report["incidents"] == 4  # A, nested B, C, F (not momentary, planned, June)
        assert report["impact_total"] == pytest.approx(100.0)
        assert report["impact_mean"] == pytest.approx(20.0)  # 100 / 5 affected
        shares = {k: v for k, v in report["components"].items() if v}
        assert shares == {
            "duration": pytest.approx(0.65), "etr_error": pytest.approx(0.05),
            "not_notified": pytest.approx(0.30),
        }  # fmt: skip
        assert report["top"][0]["incident_id"] == "INC-A"
        # first notices of A (C1 9 min, C2 74 min under nested B), C (none), F (14 min)
        assert report["first_notice"] == {"customers": 4, "notified": 3, "p50_min": 14.0}
        assert report["first_notice_p90_min"] == pytest.approx(62.0)
        # A restored 5 min after its last ETR, C 50 min early; F's ETR came after restoration
        assert report["etr_errors"]["count"] == 2
        assert report["etr_hit_rate"] == pytest.approx(0.5)
        assert report["etr_errors"]["by_cause"]["equipment"]["mean_min"] == pytest.approx(-50.0)
        assert report["survey"]["responses"] == 2
        assert report["survey"]["mean_score"] == pytest.approx(3.0)
        assert report["calibration_r2"] == pytest.approx(0.42)


class TestBuildReportArguments:
    async def test_rejects_bad_group_and_kind(self, session: AsyncSession, policy: Policy) -> None:
        with pytest.raises(ValueError, match="group_by"):
            await build_report(session, "reliability", JULY_START, JULY_END, "town", policy)
        with pytest.raises(ValueError, match="report must be"):
            await build_report(session, "nonsense", JULY_START, JULY_END, "all", policy)  # type: ignore[arg-type]


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    """A migrated SQLite file holding the hand-made history (committed)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'reports.db'}"

    async def fill() -> None:
        eng = create_engine(url)
        try:
            await migrate_engine(eng)
            async with AsyncSession(eng) as s, s.begin():
                await insert_history(s)
        finally:
            await eng.dispose()

    asyncio.run(fill())
    return url


class TestReportCli:
    def _run(self, *args: str) -> Any:
        from services.cli import build_app

        return CliRunner().invoke(build_app(), ["report", *args], catch_exceptions=False)

    def test_json_csv_and_html(self, sqlite_file: str, tmp_path: Path) -> None:
        common = ["--start", "2026-07-01", "--end", "2026-08-01T00:00:00+08:00",
                  "--database-url", sqlite_file]  # fmt: skip
        result = self._run("reliability", *common, "--group-by", "feeder")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert [g["key"] for g in report["groups"]] == ["F1", "F2"]
        assert report["period"]["start"] == "2026-07-01T00:00:00+08:00"
        result = self._run("sla", *common, "--format", "csv")
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].startswith("target,count,met")
        assert any(line.startswith("acknowledge,4,3,") for line in lines)
        out = tmp_path / "voltage.html"
        result = self._run("voltage", *common, "--format", "html", "--output", str(out))
        assert result.exit_code == 0, result.output
        page = out.read_text(encoding="utf-8")
        assert page.lstrip().lower().startswith("<!doctype html")
        assert "<svg" in page

    def test_bad_dates_are_rejected(self, sqlite_file: str) -> None:
        result = self._run("sla", "--start", "July", "--end", "2026-08-01",
                           "--database-url", sqlite_file)  # fmt: skip
        assert result.exit_code != 0
        assert "start" in result.output


def test_history_times_are_utc() -> None:
    assert at(7, 1, 8).tzinfo is UTC
    assert at(7, 1, 8) == datetime(2026, 7, 1, tzinfo=UTC)


