"""The batch stores write what one-by-one stores would (PostgreSQL ``outagedesk_w_batch_*``
and SQLite): voltage readings and their clipped compliance minutes
(:func:`store_readings` vs :func:`store_reading`) and first notices
(:func:`record_first_notices` vs :func:`record_first_notice`), survey answers
(:func:`store_surveys` vs :func:`store_survey`), and :func:`insert_rows` vs SQLAlchemy Core
statements (timestamps, booleans, JSON, NULLs; conflicts updated, ignored or kept by a
condition), and :func:`among` (through :func:`processed_ids`) finds exactly the stored
values among more than one SQLite IN-list of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate_engine
from services.incidents import orm
from services.incidents.bulk_sql import IN_LIST_SIZE, insert_rows
from services.incidents.customer_messages import customer_messages
from services.incidents.notice_store import Notice, first_notice_ats, record_first_notices
from services.incidents.quality_orm import (
    customer_impacts,
    first_notices,
    surveys,
    voltage_minutes,
    voltage_readings,
)
from services.incidents.report_store import first_notice_at, record_first_notice, store_survey
from services.incidents.state_store import (
    CUSTOMER_COLUMNS,
    mark_processed,
    processed_ids,
    upsert,
)
from services.incidents.survey_store import SurveyRow, store_surveys
from services.incidents.voltage_store import ReadingRow, store_reading, store_readings
from tests.integration.incidents.incidents_db import fresh_pg_database

Sessions = async_sessionmaker[AsyncSession]
TZ = ZoneInfo("Asia/Shanghai")
# 15:45 UTC = 23:45 local: intervals ending after 16:00 UTC are split at local midnight
T0 = datetime(2026, 7, 14, 15, 45, tzinfo=UTC)


@pytest.fixture(params=["postgres", "sqlite"])
def db_urls(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if request.param == "postgres":
        server = request.getfixturevalue("pg_url")
        return [
            asyncio.run(fresh_pg_database(server, f"outagedesk_w_batch_{i}")) for i in range(2)
        ]
    return [f"sqlite+aiosqlite:///{tmp_path / f'batch{i}.db'}" for i in range(2)]


@pytest.fixture
async def two_dbs(db_urls: list[str]) -> AsyncIterator[list[Sessions]]:
    engines: list[AsyncEngine] = []
    try:
        for url in db_urls:
            engine = create_engine(url)
            engines.append(engine)
            await migrate_engine(engine, schemas=["topology", "incidents"])
        yield [session_factory(e) for e in engines]
    finally:
        for engine in engines:
            await engine.dispose()


def reading(
    eid: str, meter: str, minutes: float, v_avg: float, interval_s: int = 900
) -> ReadingRow:
    return ReadingRow(
        eid, meter, "T1", "F01", T0 + timedelta(minutes=minutes), interval_s, v_avg, None, None,
        v_avg >= 198.0,
    )  # fmt: skip


async def table(sessions: Sessions, t: sa.Table, *order: Any) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        return [tuple(r) for r in await session.execute(sa.select(t).order_by(*order))]


class TestStoreReadings:
    async def test_batch_equals_one_by_one(self, two_dbs: list[Sessions]) -> None:
        one, batch = two_dbs
        earlier = [reading("r0", "M1", 0, 220.0), reading("r0b", "M2", 5, 190.0)]
        # in batch order: back-to-back, overlapping (clipped by the one before it), a late
        # one arriving after a later reading (not clipped by it), a duplicate of a stored
        # reading, a repeat inside the batch, out of band, and one across local midnight
        rows = [
            reading("r1", "M1", 15, 190.0),
            reading("r2", "M1", 25, 220.0),
            reading("r3", "M1", 10, 221.0, interval_s=300),
            reading("r0", "M1", 0, 220.0),
            reading("r4", "M2", 20, 195.0),
            reading("r4", "M2", 20, 195.0),
            reading("r5", "M3", 20, 230.0, interval_s=1800),
        ]
        for sessions in two_dbs:
            async with UnitOfWork(sessions) as uow:
                await store_readings(uow.session, [(r, "urban") for r in earlier], TZ)
                await uow.commit()
        new_one = set()
        async with UnitOfWork(one) as uow:
            for r in rows:
                if await store_reading(uow.session, r, "urban", TZ):
                    new_one.add(r.event_id)
            await uow.commit()
        async with UnitOfWork(batch) as uow:
            new_batch = await store_readings(uow.session, [(r, "urban") for r in rows], TZ)
            await uow.commit()
        assert new_batch == new_one == {"r1", "r2", "r3", "r4", "r5"}
        minutes = await table(batch, voltage_minutes, voltage_minutes.c.meter_id,
                              voltage_minutes.c.day)  # fmt: skip
        assert minutes == await table(one, voltage_minutes, voltage_minutes.c.meter_id,
                                      voltage_minutes.c.day)  # fmt: skip
        by_key = {(m[0], m[1].isoformat()): (m[5], m[6]) for m in minutes}
        # M1 (local days): r0 15 + r1 15 (out of band) + r3 5 (late, clipped at r0 only)
        # on the 14th; r2 10 (clipped at r1) on the 15th
        assert by_key[("M1", "2026-07-14")] == (35.0, 15.0)
        assert by_key[("M1", "2026-07-15")] == (10.0, 0.0)
        assert by_key[("M2", "2026-07-14")] == (25.0, 25.0)  # r4 clipped at r0b
        assert by_key[("M3", "2026-07-14")] == (25.0, 0.0)  # split at local midnight
        assert by_key[("M3", "2026-07-15")] == (5.0, 0.0)
        assert await table(batch, voltage_readings, voltage_readings.c.event_id) == await table(
            one, voltage_readings, voltage_readings.c.event_id
        )


class TestRecordFirstNotices:
    async def test_batch_equals_one_by_one(self, two_dbs: list[Sessions]) -> None:
        one, batch = two_dbs

        def n(incident: str, customer: str, minutes: int, stage: str = "outage_detected",
              channel: str = "sms") -> Notice:  # fmt: skip
            return Notice(incident, customer, T0 + timedelta(minutes=minutes), stage, channel)

        stored = [n("I1", "C1", 10), n("I2", "C1", 5)]
        notices = [
            n("I1", "C1", 12),  # later than stored: no change
            n("I1", "C2", 8, channel="email"),
            n("I1", "C2", 8, channel="sms"),  # same time: the first one stays
            n("I1", "C2", 3, stage="etr_set"),  # earlier: replaces
            n("I2", "C1", 4),  # earlier than stored
            n("I3", "C9", 20),
        ]
        for sessions in two_dbs:
            async with UnitOfWork(sessions) as uow:
                await record_first_notices(uow.session, stored)
                await uow.commit()
        changed_one = set()
        async with UnitOfWork(one) as uow:
            for x in notices:
                if await record_first_notice(
                    uow.session, x.incident_id, x.customer_id, x.sent_at, x.stage, x.channel
                ):
                    changed_one.add(x.incident_id)
            await uow.commit()
        async with UnitOfWork(batch) as uow:
            changed_batch = await record_first_notices(uow.session, notices)
            await uow.commit()
        assert changed_batch == changed_one == {"I1", "I2", "I3"}
        order = (first_notices.c.incident_id, first_notices.c.customer_id)
        assert await table(batch, first_notices, *order) == await table(one, first_notices, *order)
        async with batch() as session:
            firsts = await first_notice_ats(session, ["I1", "I2", "I3", "I4"])
            singles = {i: await first_notice_at(session, i) for i in ("I1", "I2", "I3", "I4")}
        assert firsts == {i: at for i, at in singles.items() if at is not None}
        assert firsts["I1"] == T0 + timedelta(minutes=3)


class TestStoreSurveys:
    async def test_batch_equals_one_by_one(self, two_dbs: list[Sessions]) -> None:
        one, batch = two_dbs

        def incident(iid: str, restored_min: int | None) -> dict[str, Any]:
            restored = None if restored_min is None else T0 + timedelta(minutes=restored_min)
            return {
                "id": iid, "kind": "outage", "status": "restored", "feeder_id": "F01",
                "area": "urban", "detected_at": T0, "restored_at": restored,
                "customers_affected": 1, "customers_out": 0, "customer_minutes": 0.0,
                "etr_slips": 0, "seq": 1, "version": 1, "sla": {}, "snapshot": {},
                "updated_at": T0,
            }  # fmt: skip

        members = [("I1", "C1"), ("I2", "C1"), ("I3", "C1"), ("I1", "C2")]
        for sessions in two_dbs:
            async with UnitOfWork(sessions) as uow:
                await uow.session.execute(
                    sa.insert(orm.incidents),
                    [incident("I1", 10), incident("I2", 30), incident("I3", None)],
                )
                await uow.session.execute(
                    sa.insert(orm.incident_customers),
                    [{"incident_id": i, "customer_id": c} for i, c in members],
                )
                await uow.commit()

        def s(eid: str, customer: str, minutes: int, incident: str | None = None) -> SurveyRow:
            return SurveyRow(eid, customer, incident, 2, T0 + timedelta(minutes=minutes))

        answers = [
            s("s1", "C1", 20),  # I1 (I2 not yet restored)
            s("s2", "C1", 40),  # I2, the latest restored
            s("s3", "C2", 5),  # none restored yet
            s("s4", "C2", 50, incident="IX"),  # given
            s("s1", "C1", 20),  # a repeat: stored once
        ]
        async with UnitOfWork(one) as uow:
            stored_one = {
                a.event_id
                for a in answers
                if await store_survey(
                    uow.session, a.event_id, a.customer_id, a.incident_id, a.score,
                    a.occurred_at,
                )  # fmt: skip
            }
            await uow.commit()
        async with UnitOfWork(batch) as uow:
            stored_batch = await store_surveys(uow.session, answers)
            await uow.commit()
        assert stored_batch == stored_one == {"s1", "s2", "s3", "s4"}
        got = await table(batch, surveys, surveys.c.event_id)
        assert got == await table(one, surveys, surveys.c.event_id)
        assert [r[2] for r in got] == ["I1", "I2", None, "IX"]


class TestInterruptionGroups:
    async def test_groups_from_the_held_topology_equal_the_stored_lookup(
        self, two_dbs: list[Sessions]
    ) -> None:
        """Rows new to an incident get (feeder, substation, area) from the process's topology
        in one database and from the stored topology's SQL lookup in the other; a
        transformer's own area overrides its feeder's; an unknown customer has none."""
        from services.common.topology.model import Feeder, Transformer
        from services.common.topology.repository import store_topology
        from services.incidents.domain.model import Incident, Interruption
        from services.incidents.state_store import IncidentMeta, save_incidents
        from tests.unit.incidents.topology_fixture import build_topology

        base = build_topology()
        remote = Transformer("T31", "F01-FU3", 220, 1, area="remote")  # overrides "urban"
        topology = type(base).build(
            [Feeder("F01", "Yunhe 1", "S1", "urban")], list(base.devices.values()),
            [remote if t.id == "T31" else t for t in base.transformers.values()],
            list(base.customers.values()),
        )  # fmt: skip
        customers = sorted(topology.customers)[::3]
        got = []
        for sessions, held in zip(two_dbs, (topology, None), strict=True):
            async with UnitOfWork(sessions) as uow:
                await store_topology(uow.session, topology)
                for iid, who in (("I-KNOWN", customers), ("I-UNKNOWN", ["C-NOT-IN-TOPOLOGY"])):
                    inc = Incident(iid, "outage", "detected", "F01", "urban", T0)
                    for c in who:
                        inc.add_interruption(Interruption(c, T0, "meter"))
                    await save_incidents(uow.session, [(inc, IncidentMeta())], T0, held)
                await uow.commit()
            t = orm.interruptions
            got.append(await table(sessions, sa.select(
                t.c.incident_id, t.c.customer_id, t.c.feeder_id, t.c.substation, t.c.area
            ).subquery(), "incident_id", "customer_id"))  # fmt: skip
        assert got[0] == got[1]
        by_customer = {r[1]: r[2:] for r in got[0]}
        assert by_customer["C-NOT-IN-TOPOLOGY"] == (None, None, None)
        t31 = [c for c in customers if topology.customers[c].transformer == "T31"]
        assert t31
        assert {by_customer[c] for c in t31} == {("F01", "S1", "remote")}
        assert {by_customer[c] for c in customers if c not in t31} == {("F01", "S1", "urban")}


def as_dicts(columns: Any, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, r, strict=True)) for r in rows]


async def core_upsert(
    session: AsyncSession, table: sa.Table, columns: Any, rows: list[tuple[Any, ...]],
    *, newer_only: bool = False,
) -> None:
    """SQLAlchemy Core's upsert on ``customer_id`` setting every other column (only over an
    older ``sent_at`` when ``newer_only``): what :func:`insert_rows` is compared with."""
    stmt = upsert(session, table)
    where = table.c.sent_at <= stmt.excluded.sent_at if newer_only else None
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={c: stmt.excluded[c] for c in columns[1:]},
            where=where,
        ),
        as_dicts(columns, rows),
    )


def states(feeder: str, shift: int) -> list[tuple[Any, ...]]:
    """customer_state rows in CUSTOMER_COLUMNS order: timestamps, booleans and NULLs."""
    return [
        (f"C{i}", feeder, "OFF" if i % 2 else "ON", T0 + timedelta(minutes=i + shift),
         T0 + timedelta(seconds=i * 1.5), "meter", i % 3 == 0, i % 2 == 0,
         T0 if i % 2 else None, None)
        for i in range(shift, shift + 6)
    ]  # fmt: skip


class TestInsertRows:
    async def test_rows_land_as_core_statements_leave_them(self, two_dbs: list[Sessions]) -> None:
        core, bulk = two_dbs
        first, second = states("F01", 0), states("F02", 3)  # C3..C5 conflict
        impacts = [
            ("I1", f"C{i}", 0.1 * i, {"duration": 0.1 * i, "notice": 0.0},
             {"customer_class": "residential", "critical": i == 2, "calls": i}, 12.5 * i,
             i == 1, T0 + timedelta(microseconds=i))
            for i in range(3)
        ]  # fmt: skip
        m_cols = ("customer_id", "incident_id", "job_id", "stage", "channel", "sent_at")
        messages = [("C1", "I1", "j1", "outage_detected", "sms", T0),
                    ("C2", "I1", "j2", "restored", "email", T0 + timedelta(hours=1))]
        # C1 newer: replaces; C2 older: the stored newer message stays
        later = [("C1", "I2", "j3", "restored", "sms", T0 + timedelta(hours=2)),
                 ("C2", "I2", "j4", "etr_set", "sms", T0)]  # fmt: skip
        async with UnitOfWork(core) as uow:
            s = uow.session
            cs = orm.customer_state
            await s.execute(sa.insert(cs), as_dicts(CUSTOMER_COLUMNS, first))
            await core_upsert(s, cs, CUSTOMER_COLUMNS, second)
            cols = [str(c.name) for c in customer_impacts.columns]
            await s.execute(sa.insert(customer_impacts), as_dicts(cols, impacts))
            await s.execute(upsert(s, customer_impacts).on_conflict_do_nothing(),
                            as_dicts(cols, impacts))  # fmt: skip
            t = customer_messages
            await s.execute(sa.insert(t), as_dicts(m_cols, messages))
            await core_upsert(s, t, m_cols, later, newer_only=True)
            await uow.commit()
        async with UnitOfWork(bulk) as uow:
            s = uow.session
            await insert_rows(s, orm.customer_state, CUSTOMER_COLUMNS, first)
            await insert_rows(s, orm.customer_state, CUSTOMER_COLUMNS,
                              as_dicts(CUSTOMER_COLUMNS, second),
                              conflict=("customer_id",), update=CUSTOMER_COLUMNS[1:])  # fmt: skip
            cols = [str(c.name) for c in customer_impacts.columns]
            await insert_rows(s, customer_impacts, cols, impacts)
            await insert_rows(s, customer_impacts, cols, impacts, conflict=())
            await insert_rows(s, customer_messages, m_cols, messages)
            await insert_rows(s, customer_messages, m_cols, later, conflict=("customer_id",),
                              update=m_cols[1:], where="t.sent_at <= excluded.sent_at")  # fmt: skip
            await uow.commit()
        for t, key in ((orm.customer_state, "customer_id"), (customer_impacts, "customer_id"),
                       (customer_messages, "customer_id")):  # fmt: skip
            expected = await table(core, t, t.c[key])
            assert await table(bulk, t, t.c[key]) == expected
        stored = await table(bulk, customer_messages, customer_messages.c.customer_id)
        assert [r[2] for r in stored] == ["j3", "j2"]
        assert len(await table(bulk, orm.customer_state, orm.customer_state.c.customer_id)) == 9


class TestAmong:
    async def test_finds_exactly_the_stored_ids(self, two_dbs: list[Sessions]) -> None:
        sessions = two_dbs[0]
        n = 2 * IN_LIST_SIZE + 7  # three IN-lists on SQLite
        stored = [f"s-{i:05d}" for i in range(0, 2 * n, 2)]  # even numbers only
        async with UnitOfWork(sessions) as uow:
            await mark_processed(uow.session, ((s, "F01") for s in stored), T0)
            await uow.commit()
        asked = [f"s-{i:05d}" for i in range(n)] + ["s-00004", "other"]  # a repeat, a stranger
        async with sessions() as session:
            found = await processed_ids(session, asked)
            assert found == {f"s-{i:05d}" for i in range(0, n, 2)}
            assert await processed_ids(session, []) == set()
            assert await processed_ids(session, stored[-3:]) == set(stored[-3:])
