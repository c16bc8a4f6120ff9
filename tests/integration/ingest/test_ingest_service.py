"""The ingest service end to end on the in-memory bus and on real Kafka, with dead letters
stored in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import orjson
import pytest
from ingest_harness import (  # type: ignore[import-not-found]
    NOW,
    OCCURRED,
    CrashBeforeCommitBus,
    HeldTopology,
    SimulatedCrash,
    drain,
    make_topology,
    prefix_of,
    publish,
    read_topic,
    value,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas import (
    CUSTOMER_REPORTS,
    DEAD_LETTER,
    DEVICE_EVENTS,
    METER_EVENTS,
    SIGNALS,
    TOPOLOGY_CHANGED,
    parse_dead_letter,
    parse_signal,
)
from services.common.bus.base import Bus, Record
from services.common.clock import VirtualClock
from services.common.db import UnitOfWork
from services.ingest.entrypoints.service import IngestService
from services.ingest.repository import list_dead_letters
from services.ingest.settings import IngestSettings

Message = tuple[str, str | None, bytes]


def scenario(run: str) -> tuple[list[Message], dict[str, tuple[str, str]], dict[str, str]]:
    """Messages in delivery order; expected {signal_id: (kind, feeder)}; {bad key: code}."""

    def meter(n: int, meter: int, kind: str, **extra: object) -> Message:
        return (
            METER_EVENTS,
            f"{run}-M{meter}",
            value(
                event_id=f"{run}-m{n}",
                meter_id=f"{run}-M{meter}",
                type=kind,
                occurred_at=OCCURRED,
                **extra,
            ),
        )

    good = [
        meter(1, 1, "last_gasp"),
        meter(2, 2, "power_restore"),
        meter(3, 3, "voltage", interval_s=900, v_avg=180.0, v_min=170.0, v_max=190.0),
        meter(4, 4, "ping_response", energized=False),
        (
            DEVICE_EVENTS,
            f"{run}-F01-BKR",
            value(
                event_id=f"{run}-d1",
                device_id=f"{run}-F01-BKR",
                occurred_at=OCCURRED,
                state="open",
                lockout=True,
            ),
        ),
        (
            CUSTOMER_REPORTS,
            f"{run}-C3",
            value(
                event_id=f"{run}-c1",
                customer_id=f"{run}-C3",
                occurred_at=OCCURRED,
                channel="app",
                kind="no_power",
            ),
        ),
    ]
    expected = {
        f"{run}-m1": ("power_off", "F01"),
        f"{run}-m2": ("power_on", "F01"),
        f"{run}-m3": ("voltage", "F02"),
        f"{run}-m4": ("power_off", "F02"),
        f"{run}-d1": ("device_open", "F01"),
        f"{run}-c1": ("call_no_power", "F02"),
    }
    old = (NOW - timedelta(days=8)).isoformat()
    bad: list[tuple[Message, str]] = [
        ((METER_EVENTS, f"{run}-bad-json", b"{oops"), "invalid_json"),
        ((METER_EVENTS, f"{run}-bad-bytes", b"\xff\xfe\x00"), "invalid_json"),
        (
            (
                METER_EVENTS,
                f"{run}-bad-schema",
                value(
                    event_id=f"{run}-x1", meter_id=f"{run}-M1", type="voltage", occurred_at=OCCURRED
                ),
            ),
            "schema",
        ),
        (
            (
                METER_EVENTS,
                f"{run}-bad-meter",
                value(
                    event_id=f"{run}-x2",
                    meter_id=f"{run}-M404",
                    type="last_gasp",
                    occurred_at=OCCURRED,
                ),
            ),
            "unknown_meter",
        ),
        (
            (
                DEVICE_EVENTS,
                f"{run}-bad-device",
                value(
                    event_id=f"{run}-x3",
                    device_id="nope",
                    occurred_at=OCCURRED,
                    state="closed",
                    lockout=False,
                ),
            ),
            "unknown_device",
        ),
        (
            (
                CUSTOMER_REPORTS,
                f"{run}-bad-customer",
                value(
                    event_id=f"{run}-x4",
                    customer_id="nobody",
                    occurred_at=OCCURRED,
                    channel="sms",
                    kind="flicker",
                ),
            ),
            "unknown_customer",
        ),
        (
            (
                METER_EVENTS,
                f"{run}-bad-time",
                value(
                    event_id=f"{run}-x5", meter_id=f"{run}-M1", type="last_gasp", occurred_at=old
                ),
            ),
            "timestamp_out_of_range",
        ),
        ((METER_EVENTS, f"{run}-bad-size", b'{"x": "' + b"a" * 70_000 + b'"}'), "too_large"),
    ]
    duplicates = [good[0], good[1], good[4], good[5]]
    messages: list[Message] = []
    for i in range(max(len(good), len(bad))):
        if i < len(good):
            messages.append(good[i])
        if i < len(bad):
            messages.append(bad[i][0])
        if i < len(duplicates):
            messages.append(duplicates[i])
    return messages, expected, {m[1]: code for m, code in bad if m[1] is not None}


def make_service(
    bus: Bus, sessions: async_sessionmaker[AsyncSession], run: str, held: HeldTopology
) -> IngestService:
    settings = IngestSettings(
        ingest_group_id=f"ingest-test-{run}",
        ingest_poll_timeout_s=0.2,
        ingest_metrics_port=0,
        ingest_topic_prefix=prefix_of(run),
    )
    return IngestService(settings, bus, sessions, VirtualClock(NOW), load_topology=held)


async def ours(bus: Bus, run: str) -> tuple[list[Record], list[Record]]:
    signals = [
        r
        for r in await read_topic(bus, prefix_of(run) + SIGNALS, f"read-s-{run}")
        if orjson.loads(r.value)["signal_id"].startswith(run)
    ]
    dead = [
        r
        for r in await read_topic(bus, prefix_of(run) + DEAD_LETTER, f"read-d-{run}")
        if r.key is not None and r.key.decode(errors="replace").startswith(run)
    ]
    return signals, dead


async def stored_codes(sessions: async_sessionmaker[AsyncSession], run: str) -> dict[str, str]:
    async with UnitOfWork(sessions) as uow:
        rows = await list_dead_letters(uow.session)
    return {r.key: r.error_code for r in rows if r.key is not None and r.key.startswith(run)}


async def run_until_crash(service: IngestService) -> None:
    async with asyncio.timeout(60):
        while True:
            await service.run_once(4)


def event_id_of(raw: bytes) -> object:
    """The event id of a raw message, None for the scenario's bad ones (``{oops`` starts
    like JSON and is not)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value.get("event_id") if isinstance(value, dict) else None


class TestIngestService:
    async def test_one_signal_per_distinct_event_and_one_dead_letter_per_bad_one(
        self, bus: Bus, ingest_sessions: async_sessionmaker[AsyncSession], run_id: str
    ) -> None:
        held = HeldTopology(make_topology(run_id))
        service = make_service(bus, ingest_sessions, run_id, held)
        await service.start()
        try:
            await drain(service)  # whatever earlier runs left on a real broker's topics
            messages, expected, bad = scenario(run_id)
            await publish(bus, messages, prefix_of(run_id))
            await drain(service)
        finally:
            await service.stop()

        signals, dead = await ours(bus, run_id)
        parsed = [parse_signal(r.value) for r in signals]
        assert sorted(s.signal_id for s in parsed) == sorted(expected)
        assert {s.signal_id: (s.kind, s.feeder_id) for s in parsed} == expected
        assert all(r.key == orjson.loads(r.value)["feeder_id"].encode() for r in signals)
        assert {r.key.decode(): parse_dead_letter(r.value).error.code for r in dead if r.key} == bad
        assert len(dead) == len(bad)
        assert await stored_codes(ingest_sessions, run_id) == bad

    async def test_crash_after_producing_before_commit_repeats_only_that_batch(
        self, bus: Bus, ingest_sessions: async_sessionmaker[AsyncSession], run_id: str
    ) -> None:
        held = HeldTopology(make_topology(run_id))
        crashing = CrashBeforeCommitBus(bus)
        first = make_service(crashing, ingest_sessions, run_id, held)  # type: ignore[arg-type]
        await first.start()
        try:
            await drain(first)
            messages, expected, bad = scenario(run_id)
            await publish(bus, messages, prefix_of(run_id))
            handled = 0
            async with asyncio.timeout(60):
                while handled < 6:  # a few committed batches first
                    handled += await first.run_once(3)
            crashing.crash_next_commit = True
            with pytest.raises(SimulatedCrash):
                await run_until_crash(first)
        finally:
            await first.stop()  # leaves the group without committing the last batch
        in_crashed_batch = {event_id_of(r.value) for r in crashing.crashed_batch}

        second = make_service(bus, ingest_sessions, run_id, held)
        await second.start()
        try:
            await drain(second)
        finally:
            await second.stop()

        signals, dead = await ours(bus, run_id)
        counts = Counter(orjson.loads(r.value)["signal_id"] for r in signals)
        assert set(counts) == set(expected)  # nothing missing
        repeated = {sid for sid, n in counts.items() if n > 1}
        assert repeated <= in_crashed_batch  # duplicates only from the uncommitted batch
        assert all(n <= 2 for n in counts.values())
        assert repeated, "the crashed batch held a good event, so something must repeat"
        assert {r.key.decode() for r in dead if r.key} == set(bad)
        assert await stored_codes(ingest_sessions, run_id) == bad  # stored once each

    async def test_topology_change_is_picked_up_without_restart(
        self, bus: Bus, ingest_sessions: async_sessionmaker[AsyncSession], run_id: str
    ) -> None:
        held = HeldTopology(make_topology(run_id))
        service = make_service(bus, ingest_sessions, run_id, held)
        await service.start()
        new_meter = f"{run_id}-M5"

        def event(n: int) -> tuple[str, str, bytes]:
            return (
                METER_EVENTS,
                new_meter,
                value(
                    event_id=f"{run_id}-new{n}",
                    meter_id=new_meter,
                    type="last_gasp",
                    occurred_at=OCCURRED,
                ),
            )

        try:
            await drain(service)
            await publish(bus, [event(1)], prefix_of(run_id))
            await drain(service)
            loads = held.loads
            held.topology = make_topology(run_id, version=2, extra_meters=1)
            await publish(
                bus, [(TOPOLOGY_CHANGED, "topology", value(version=2, changed_at=OCCURRED))]
            )
            async with asyncio.timeout(30):
                while held.loads == loads:
                    await service.run_once(10)
            assert service.topology.current.version == 2
            await publish(bus, [event(2)], prefix_of(run_id))
            await drain(service)
        finally:
            await service.stop()

        signals, dead = await ours(bus, run_id)
        assert [orjson.loads(r.value)["signal_id"] for r in signals] == [f"{run_id}-new2"]
        assert [parse_dead_letter(r.value).error.code for r in dead] == ["unknown_meter"]
