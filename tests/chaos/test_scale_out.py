"""DESIGN section 13 on the real stack: two ``serve incidents`` consumers in one group on a
6-partition signals topic while a storm arrives; one is stopped mid-storm, the other takes
its partitions, rebuilds those feeders' state from PostgreSQL and carries on. The result
equals a single consumer's run over the same topic (its own group and database).

The storm lies in 2099 so no correlator timer fires: the outcome depends on the signals
alone, whatever the split between consumers.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError
from stack import (
    TOPIC_PARTITIONS,
    ServiceProcess,
    count,
    create_topics,
    fetch,
    fresh_database,
    outcome,
)
from storm_scenario import Windows, county, storm_lines

from services.common.topology.loader import build_topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.normalise import process
from services.ingest.domain.results import Signal

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.chaos]

BASE = datetime(2099, 1, 1, tzinfo=UTC)
CUSTOMERS = 3000
PRODUCE_S = 30.0
STOP_AT = 0.4  # share of the signals produced when one consumer is stopped


def storm_signals(topology: dict[str, Any]) -> list[Signal]:
    """The storm's raw lines normalised as ingest would (bad lines and repeats dropped)."""
    topo = build_topology(topology)
    dedup = DedupWindow(1_000_000)
    out: list[Signal] = []
    for line in storm_lines(topology, BASE, Windows()):
        if "value" not in line or "occurred_at" not in line["value"]:
            continue
        raw = orjson.dumps(line["value"])
        when = datetime.fromisoformat(line["value"]["occurred_at"])
        result = process(raw, line["topic"], None, 0, 0, when, topo, dedup)
        if isinstance(result, Signal):
            out.append(result)
    dedup.commit()
    return out


async def assignments(bootstrap: str, group: str) -> dict[str, set[int]]:
    """member id → partitions it owns now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        out: dict[str, set[int]] = {}
        for group_row in response.groups:
            for member in group_row[5]:
                member_id, assignment = member[0], member[-1]
                parts: set[int] = set()
                if assignment:
                    decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                    for _, partitions in decoded.assignment:
                        parts.update(partitions)
                out[member_id] = parts
        return out
    finally:
        await admin.close()


async def stored_offsets(url: str, group: str) -> dict[int, int]:
    rows = await fetch(url, "SELECT partition, next_offset FROM incidents.consumer_offsets "
                            f"WHERE group_id = '{group}'")  # noqa: S608  # fmt: skip
    return {int(p): int(o) for p, o in rows}


async def wait_for(what: str, within_s: float, check: Any) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


class TestScaleOut:
    async def test_survivor_takes_over_and_equals_one_consumer(
        self, pg_url: str, kafka_bootstrap: str, tmp_path: Path
    ) -> None:
        topology = county(CUSTOMERS)
        (tmp_path / "topology.json").write_bytes(orjson.dumps(topology))
        signals = storm_signals(topology)
        distinct = len({s.signal_id for s in signals})
        run = uuid.uuid4().hex[:8]
        prefix, group = f"scale-{run}.", f"incidents-scale-{run}"
        topic = prefix + "grid.signals.v1"
        await create_topics(kafka_bootstrap, [topic], TOPIC_PARTITIONS)
        # one after the other: Alembic's migration context is process-global
        one_url = await fresh_database(pg_url, "outagedesk_scale_one", tmp_path / "topology.json")
        two_url = await fresh_database(pg_url, "outagedesk_scale_two", tmp_path / "topology.json")
        env = {
            "OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "OUTAGEDESK_INCIDENTS_TOPIC_PREFIX": prefix,
            "OUTAGEDESK_CONSUMER_BATCH_SIZE": "50",
            "OUTAGEDESK_LOG_FORMAT": "json",
        }
        base_env = {**os.environ, **env}
        two = [
            ServiceProcess(f"two-{i}", ["serve", "incidents", "--no-api"],
                           {**base_env, "OUTAGEDESK_DATABASE_URL": two_url,
                            "OUTAGEDESK_INCIDENTS_GROUP_ID": group},
                           tmp_path / f"two-{i}.log")  # fmt: skip
            for i in range(2)
        ]
        one = ServiceProcess("one", ["serve", "incidents", "--no-api"],
                             {**base_env, "OUTAGEDESK_DATABASE_URL": one_url,
                              "OUTAGEDESK_INCIDENTS_GROUP_ID": group + "-single"},
                             tmp_path / "one.log")  # fmt: skip
        try:
            for p in (*two, one):
                p.start()

            async def split() -> bool:
                try:
                    owners = await assignments(kafka_bootstrap, group)
                except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                    return False  # a fresh broker still creating __consumer_offsets
                return len(owners) == 2 and all(owners.values())

            await wait_for("both consumers own partitions", 90, split)
            before = await assignments(kafka_bootstrap, group)
            stopped_at: dict[int, int] = {}
            stop_s: list[float] = []

            async def stop_one() -> None:
                await wait_for("the pair to apply some signals", 60,
                               lambda: _at_least(count(two_url, "incidents.processed_signals"),
                                                 len(signals) * STOP_AT * 0.5))  # fmt: skip
                t = time.monotonic()
                assert two[1].terminate(timeout=90) == 0
                stop_s.append(time.monotonic() - t)
                stopped_at.update(await stored_offsets(two_url, group))

            await _produce(kafka_bootstrap, topic, signals, stop_one)
            for url in (one_url, two_url):
                await wait_for("every signal applied", 300,
                               lambda u=url: _at_least(count(u, "incidents.processed_signals"),
                                                       distinct))  # fmt: skip
            after = await assignments(kafka_bootstrap, group)
            assert two[0].alive
            assert one.alive
            assert two[0].terminate(timeout=90) == 0
            assert one.terminate(timeout=90) == 0
            print(f"graceful stop of the leaving consumer took {stop_s[0]:.1f} s")
        finally:
            for p in (*two, one):
                p.close()
        # The survivor kept its member id and now owns all six partitions.
        (survivor,) = after
        assert after[survivor] == set(range(TOPIC_PARTITIONS))
        taken = set().union(*(p for m, p in before.items() if m != survivor))
        assert taken, before
        ends = await stored_offsets(two_url, group)
        mid = [p for p in taken if 0 < stopped_at.get(p, 0) < ends[p]]
        assert mid, f"no taken partition was mid-stream: {stopped_at} → {ends}"
        want, got = await outcome(one_url), await outcome(two_url)
        assert want["incidents"]
        assert want["interruptions"]
        for name in ("incidents", "interruptions", "incident_customers", "lifecycle_seqs",
                     "processed_signals"):  # fmt: skip
            assert got[name] == want[name], f"{name} differs from the single-consumer run"


async def _at_least(value: Any, n: float) -> bool:
    return bool(await value >= n)


async def _produce(bootstrap: str, topic: str, signals: list[Signal], hook: Any) -> None:
    """Send the signals keyed by feeder over PRODUCE_S seconds; ``hook`` at STOP_AT."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        n, started, hooked = len(signals), time.monotonic(), False
        for i in range(0, n, 20):
            if not hooked and i >= n * STOP_AT:
                hooked = True
                await hook()
            wait = started + PRODUCE_S * i / n - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            batch = signals[i : i + 20]
            futures = [await producer.send(topic, s.to_json(), key=s.key) for s in batch]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
