"""Scenario replay onto the bus, and stored dead letters: insert-or-ignore, export shape,
re-submission to the original topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from ingest_harness import NOW, read_topic
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus.base import Bus
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate_engine
from services.common.scenario import parse_scenario_lines
from services.ingest.domain.results import DeadLetter
from services.ingest.entrypoints.dead_letters import iter_dead_letters, replay_dead_letters
from services.ingest.entrypoints.replay import parse_speed, replay_scenario
from services.ingest.repository import add_dead_letters, list_dead_letters

T0 = datetime(2026, 7, 14, 8, tzinfo=UTC)


def scenario_lines(topic: str) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "topic": topic,
                "key": f"k{i}",
                "at": (T0 + timedelta(seconds=60 * i)).isoformat(),
                "value": {"n": i},
            }
        )
        for i in range(3)
    ] + [orjson.dumps({"topic": topic, "key": "bad", "raw": "{nope"})]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def dead_letter(topic: str, offset: int, raw: bytes, key: bytes | None = b"M1") -> DeadLetter:
    return DeadLetter(
        topic=topic,
        partition=0,
        offset=offset,
        raw_key=key,
        raw_value=raw,
        code="invalid_json",
        message="bad",
        path="$",
        failed_at=NOW,
    )


@pytest.fixture(params=["postgresql", "sqlite"])
async def dl_sessions(
    request: pytest.FixtureRequest, ingest_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "postgresql":
        yield ingest_sessions
        return
    engine = create_engine("sqlite+aiosqlite://")
    try:
        await migrate_engine(engine, schemas=["ingest"])
        yield session_factory(engine)
    finally:
        await engine.dispose()


class TestReplayScenario:
    async def test_lines_arrive_in_order_with_their_keys(self, bus: Bus, run_id: str) -> None:
        topic = f"replay-{run_id}"
        sent = await replay_scenario(
            parse_scenario_lines(scenario_lines(topic)), bus, speed=None, sleep=FakeTime().sleep
        )
        records = await read_topic(bus, topic, f"r-{run_id}")
        assert sent == 4
        assert [(r.key, r.value) for r in records] == [
            (b"k0", b'{"n":0}'),
            (b"k1", b'{"n":1}'),
            (b"k2", b'{"n":2}'),
            (b"bad", b"{nope"),
        ]

    async def test_speed_divides_the_gaps_between_lines(self) -> None:
        fake = FakeTime()
        bus = MemoryBus()
        await replay_scenario(
            parse_scenario_lines(scenario_lines("t")),
            bus,
            speed=60,
            sleep=fake.sleep,
            monotonic=fake.monotonic,
        )
        assert fake.sleeps == [1.0, 1.0]  # 60 s apart at 60x; the raw line rides along
        assert len(bus.records("t")) == 4

    @pytest.mark.parametrize(("text", "speed"), [("max", None), ("0", None), ("2.5", 2.5)])
    def test_speed_option(self, text: str, speed: float | None) -> None:
        assert parse_speed(text) == speed

    def test_negative_speed_is_refused(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            parse_speed("-1")


class TestStoredDeadLetters:
    async def test_redelivered_dead_letter_is_stored_once(
        self, dl_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        for _ in range(2):
            async with UnitOfWork(dl_sessions) as uow:
                await add_dead_letters(uow.session, [dead_letter("t", 1, b"{x")])
                await uow.commit()
        rows = [r async for r in iter_dead_letters(dl_sessions)]
        assert len(rows) == 1
        wire = rows[0].as_wire()
        assert (wire["topic"], wire["offset"], wire["key"], wire["value"]) == ("t", 1, "M1", "{x")
        assert wire["error"] == {"code": "invalid_json", "message": "bad", "path": "$"}
        assert wire["failed_at"] == NOW
        assert wire["replayed_at"] is None

    async def test_binary_and_nul_values_round_trip_through_base64(
        self, dl_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with UnitOfWork(dl_sessions) as uow:
            await add_dead_letters(
                uow.session,
                [dead_letter("t", 1, b"\xff\x00"), dead_letter("t", 2, b"a\x00b", key=None)],
            )
            await uow.commit()
        rows = [r async for r in iter_dead_letters(dl_sessions)]
        assert [(r.encoding, r.raw_value, r.raw_key) for r in rows] == [
            ("base64", b"\xff\x00", b"M1"),
            ("base64", b"a\x00b", None),
        ]

    async def test_replay_resubmits_to_the_original_topic_and_marks_rows(
        self, bus: Bus, dl_sessions: async_sessionmaker[AsyncSession], run_id: str
    ) -> None:
        topic = f"dl-replay-{run_id}"
        async with UnitOfWork(dl_sessions) as uow:
            await add_dead_letters(
                uow.session, [dead_letter(topic, i, b"{%d" % i) for i in range(3)]
            )
            await uow.commit()
        await bus.create_topics([topic])
        producer = await bus.producer()
        clock = VirtualClock(NOW + timedelta(hours=1))
        try:
            first = await replay_dead_letters(dl_sessions, producer, clock, ids=None)
            again = await replay_dead_letters(dl_sessions, producer, clock, ids=None)
            one = await replay_dead_letters(dl_sessions, producer, clock, ids=[first[0]])
        finally:
            await producer.stop()
        assert (len(first), again, one) == (3, [], [first[0]])
        records = await read_topic(bus, topic, f"r-{run_id}")
        assert [(r.key, r.value) for r in records] == [
            (b"M1", b"{0"),
            (b"M1", b"{1"),
            (b"M1", b"{2"),
            (b"M1", b"{0"),
        ]
        async with UnitOfWork(dl_sessions) as uow:
            rows = await list_dead_letters(uow.session)
        assert all(r.replayed_at == NOW + timedelta(hours=1) for r in rows)
