"""``outagedesk serve incidents --no-api`` on real Kafka and PostgreSQL, SIGKILLed three
times while consuming a pre-produced signals topic, then restarted: the incidents,
interruptions, correlator state and lifecycle outbox equal those of an uninterrupted run,
and the published lifecycle events are gapless per incident (duplicates only as re-sends
of the same event)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from incidents_db import fresh_pg_database  # type: ignore[import-not-found]
from incidents_scenario import (  # type: ignore[import-not-found]
    build_topology,
    dump,
    scenario,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus.base import OutMessage
from services.common.bus.kafka import KafkaBus
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork, create_engine, session_factory
from services.common.migrate import migrate_engine
from services.common.outbox import outbox_table
from services.common.topology.repository import store_topology
from services.incidents import orm
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.handlers import IncidentTopics
from services.incidents.settings import IncidentsSettings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.chaos]

FEEDERS = ("F01", "F02", "F03")
CYCLES = 12
# far ahead of the wall clock: no correlator timer fires while the process runs, so the
# outcome depends on the signals alone, whatever the batching and the kills
BASE = datetime(2099, 1, 1, tzinfo=UTC)
PARTITIONS = 3
KILLS = 3
# two runs at once (helpers sharing a server) need their own databases
DB_SUFFIX = os.environ.get("OUTAGEDESK_TEST_DB_SUFFIX", "")


def all_signals() -> list[Any]:
    out = []
    for cycle in range(CYCLES):
        base = BASE + timedelta(hours=2 * cycle)
        for feeder in FEEDERS:
            for _, signals in scenario(feeder, base, tag=f"c{cycle}-"):
                out.extend(signals)
    return out


async def reference(url: str, signals: list[Any], topology: Any) -> None:
    """The uninterrupted run: the same service in-process, on the in-memory bus."""
    engine = create_engine(url)
    clock = VirtualClock(datetime.now(UTC))
    bus = MemoryBus(clock=clock)
    settings = IncidentsSettings(incidents_poll_timeout_s=0)
    # The topology in the database too, as in the crashed run: interruption rows are
    # stamped with their customer's feeder, substation and area from it.
    await migrate_engine(engine, schemas=["topology"])
    async with UnitOfWork(session_factory(engine)) as uow:
        await store_topology(uow.session, topology)
        await uow.commit()
    service = IncidentsService(settings, bus, session_factory(engine), clock, topology)
    try:
        await service.start()
        await _produce(bus, IncidentTopics().signals, signals)
        while await service.run_once():
            pass
        await service.run_due()
        while await service.relay_once():
            pass
    finally:
        await service.stop()
        await bus.close()
        await engine.dispose()


async def _produce(bus: Any, topic: str, signals: list[Any]) -> None:
    await bus.create_topics([topic], partitions=PARTITIONS)
    producer = await bus.producer()
    try:
        for i in range(0, len(signals), 200):
            await producer.send(
                [
                    OutMessage(topic, s.model_dump_json().encode(), s.feeder_id.encode())
                    for s in signals[i : i + 200]
                ]
            )
    finally:
        await producer.stop()


async def _counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    ob = outbox_table("incidents")
    async with UnitOfWork(sessions) as uow:
        processed = (
            await uow.session.execute(sa.select(sa.func.count()).select_from(orm.processed_signals))
        ).scalar_one()
        unpublished = (
            await uow.session.execute(
                sa.select(sa.func.count()).select_from(ob).where(ob.c.published_at.is_(None))
            )
        ).scalar_one()
    return processed, unpublished


def _spawn(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-c", "from services.cli import main; main()", "serve", "incidents",
         "--no-api"],  # fmt: skip
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


class TestIncidentsCrashOnKafka:
    async def test_three_sigkills_mid_stream_change_nothing(
        self, pg_url: str, kafka_bootstrap: str, tmp_path: Any
    ) -> None:
        run = uuid.uuid4().hex[:8]
        prefix = f"i1crash-{run}."
        signals = all_signals()
        distinct = len({s.signal_id for s in signals})
        topology = build_topology(FEEDERS)
        ref_url = await fresh_pg_database(pg_url, f"outagedesk_i1_a{DB_SUFFIX}")
        await reference(ref_url, signals, topology)

        url = await fresh_pg_database(pg_url, f"outagedesk_i1_k{DB_SUFFIX}")
        engine = create_engine(url)
        sessions = session_factory(engine)
        await migrate_engine(engine, schemas=["topology"])
        async with UnitOfWork(sessions) as uow:
            await store_topology(uow.session, build_topology(FEEDERS))
            await uow.commit()
        bus = KafkaBus(kafka_bootstrap)
        topics = IncidentTopics.prefixed(prefix)
        await _produce(bus, topics.signals, signals)
        env = {
            **os.environ,
            "OUTAGEDESK_DATABASE_URL": url,
            "OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "OUTAGEDESK_INCIDENTS_TOPIC_PREFIX": prefix,
            "OUTAGEDESK_INCIDENTS_GROUP_ID": f"incidents-{run}",
            "OUTAGEDESK_CONSUMER_BATCH_SIZE": "7",
            "OUTAGEDESK_LOG_FORMAT": "json",
        }
        killed_at: list[int] = []
        log = (tmp_path / "serve.log").open("wb")
        try:
            for k in range(KILLS):
                proc = _spawn(env, log)
                target = distinct * (k + 1) // (KILLS + 1)
                deadline = time.monotonic() + 90
                while (await _counts(sessions))[0] < target:
                    assert proc.poll() is None, "serve incidents exited on its own"
                    assert time.monotonic() < deadline, "no progress"
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                killed_at.append((await _counts(sessions))[0])
            proc = _spawn(env, log)
            deadline = time.monotonic() + 120
            while await _counts(sessions) != (distinct, 0):
                assert proc.poll() is None, "serve incidents exited on its own"
                assert time.monotonic() < deadline, f"stuck at {await _counts(sessions)}"
                await asyncio.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            log.close()
            if proc.poll() is None:
                proc.kill()
        assert all(0 < n < distinct for n in killed_at), killed_at

        ref_engine = create_engine(ref_url)
        try:
            expected = await dump(session_factory(ref_engine))
        finally:
            await ref_engine.dispose()
        got = await dump(sessions)
        for table in expected:
            if table != "outbox":
                assert got[table] == expected[table], table
        strip = [(a, s, _sla_free(p)) for a, s, _, p in got["outbox"]]
        assert strip == [(a, s, _sla_free(p)) for a, s, _, p in expected["outbox"]]

        published = await _read_all(bus, topics.lifecycle, len(strip))
        await bus.close()
        await engine.dispose()
        first: dict[str, list[int]] = defaultdict(list)
        payloads: dict[str, Any] = {}
        for value in published:
            event = orjson.loads(value)
            if event["event_id"] in payloads:
                assert payloads[event["event_id"]] == event  # a re-send, never a new seq
                continue
            payloads[event["event_id"]] = event
            first[event["incident_id"]].append(event["seq"])
        for iid, seqs in first.items():
            assert seqs == list(range(1, len(seqs) + 1)), iid
        assert sorted(payloads) == sorted(f"{a}:{s}" for a, s, _ in strip)


def _sla_free(payload: Any) -> Any:
    """An event's snapshot carries the SLA statuses of the last SLA refresh, which ran after
    the previous batch: batching decides it (the incidents rows' ``sla`` must still match)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("incident"), dict):
        return payload
    return {**payload, "incident": {k: v for k, v in payload["incident"].items() if k != "sla"}}


async def _read_all(bus: KafkaBus, topic: str, at_least: int) -> list[bytes]:
    consumer = await bus.consumer([topic], group_id=f"reader-{uuid.uuid4().hex[:8]}")
    out: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < at_least or await consumer.lag() > 0:
            assert time.monotonic() < deadline, f"read {len(out)} of {at_least}"
            out.extend(r.value for r in await consumer.getmany(timeout_s=1.0, max_records=1000))
    finally:
        await consumer.stop()
    return out
