"""Ingest throughput on the real broker (run on demand; not collected by pytest).

    python bench/ingest_bench.py [--events 200000] [--meters 100000] [--batch 5000]
        [--bootstrap-servers 127.0.0.1:9092] [--partitions 4] [--profile FILE] [--skip-raw]

1. Builds a synthetic 100,000-meter topology (100 feeders x 10 fuses x 10 transformers x
   100 customers) and produces N meter events (last gasps, restores, voltage summaries) to
   a run-prefixed copy of grid.meter-events.v1, so the shared topics stay clean.
2. Ceiling: plain aiokafka consumes those messages and produces each one unchanged with
   the same producer settings as the bus (idempotent, acks=all), waiting for every ack and
   committing per batch.
3. Ingest: IngestService on KafkaBus consumes the same messages (a fresh group),
   normalises, produces signals, waits for the acks and commits; timed from the first
   poll until all N are committed. Dead letters would go to PostgreSQL (none expected).
   The bus is built as ``serve ingest`` builds it (the settings' broker long poll).
Prints both rates and their ratio, the CPU per event of this process in each phase and,
when the broker runs on this machine (deploy/local/kafka.sh), the broker's CPU per event
over each phase (anything else using a shared broker at the time counts too).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

# Runnable as ``python bench/ingest_bench.py`` from a checkout without an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.topics import METER_EVENTS
from services.common.bus.kafka import MAX_BATCH_BYTES, KafkaBus
from services.common.clock import WallClock
from services.common.db import create_engine, session_factory
from services.common.migrate import migrate_engine
from services.common.topology.model import Customer, Device, Feeder, Topology, Transformer
from services.ingest.entrypoints.service import IngestService
from services.ingest.settings import IngestSettings

UTC_8 = timezone(timedelta(hours=8))
DEFAULT_DB = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk_g"


def synthetic_topology(meters: int) -> Topology:
    feeders, devices, transformers, customers = [], [], [], []
    per_feeder = max(1, meters // 100)
    n = 0
    for f in range(100):
        fid = f"F{f:03d}"
        feeders.append(Feeder(fid, fid, "S1", "urban"))
        devices.append(Device(f"{fid}-BKR", fid, None, "breaker"))
        for fu in range(10):
            did = f"{fid}-FU{fu}"
            devices.append(Device(did, fid, f"{fid}-BKR", "fuse"))
            for t in range(10):
                tid = f"T{fid}{fu}{t}"
                transformers.append(Transformer(tid, did, 220, 1))
                for _ in range(per_feeder // 100):
                    if n < meters:
                        customers.append(Customer(f"C{n:06d}", f"M{n:06d}", tid, "residential"))
                        n += 1
    # Above any version bump other runs announce on the shared topology.changed.v1: this
    # fixed topology must not be reloaded (and re-primed) in the middle of the measurement.
    return Topology.build(feeders, devices, transformers, customers, version=2**62)


def events(count: int, meters: int, now: datetime) -> list[tuple[bytes, bytes]]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        meter = f"M{rng.randrange(meters):06d}"
        kind = ("last_gasp", "power_restore", "voltage")[i % 3]
        # Spread over ten minutes, in UTC+8 like a head-end in the field would send them.
        occurred = (now - timedelta(seconds=rng.randrange(600))).astimezone(UTC_8).isoformat()
        value: dict[str, object] = {
            "event_id": f"b-{i}", "meter_id": meter, "type": kind, "occurred_at": occurred
        }
        if kind == "voltage":
            value.update(interval_s=900, v_avg=219.5, v_min=211.0, v_max=228.1)
        out.append((meter.encode(), orjson.dumps(value)))
    return out


def broker_pid() -> int | None:
    """The local broker's process (deploy/local/kafka.sh), to charge it its CPU time; None
    when the broker runs elsewhere."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"kafka.Kafka" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def produce_input(bootstrap: str, topic: str, msgs: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=1 << 20)
    await producer.start()
    started = time.perf_counter()
    try:
        for i in range(0, len(msgs), 10_000):
            futures = [await producer.send(topic, v, key=k) for k, v in msgs[i:i + 10_000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_ceiling(
    bootstrap: str, src: str, sink: str, n: int, batch: int
) -> tuple[float, float]:
    consumer = AIOKafkaConsumer(src, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4()}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    # The bus producer's settings; the per-message send() is the plain client's way.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                max_batch_size=MAX_BATCH_BYTES)
    await consumer.start()
    await producer.start()
    done = 0
    started = None
    cpu = 0.0
    try:
        while done < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=batch)
            if not batches:
                continue
            if started is None:
                started, cpu = time.perf_counter(), time.process_time()
            futures = [await producer.send(sink, r.value, key=r.key)
                       for records in batches.values() for r in records]
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(futures)
        assert started is not None
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await consumer.stop()
        await producer.stop()


async def ingest(bootstrap: str, prefix: str, topology: Topology, n: int, batch: int,
                 database_url: str, profile: str | None) -> tuple[float, float, int]:
    engine = create_engine(database_url)
    await migrate_engine(engine, schemas=["ingest"])

    async def load(session: AsyncSession) -> Topology:
        return topology

    settings = IngestSettings(ingest_group_id=f"ingest-bench-{uuid.uuid4()}",
                              ingest_topic_prefix=prefix, consumer_batch_size=batch,
                              ingest_poll_timeout_s=1.0, ingest_metrics_port=0)
    bus = KafkaBus(bootstrap, fetch_max_wait_ms=settings.ingest_fetch_max_wait_ms)
    service = IngestService(settings, bus, session_factory(engine), WallClock(),
                            load_topology=load)
    await service.start()
    # CPU time, not wall time: on a shared machine preemption would be charged to whatever ran.
    profiler = cProfile.Profile(time.process_time) if profile else None
    done = 0
    started = None
    try:
        while done < n:
            if started is None:
                handled = await service.run_once()
                if handled:
                    started, cpu = time.perf_counter(), time.process_time()
                    if profiler:
                        profiler.enable()
                done += handled
                continue
            done += await service.run_once()
        assert started is not None
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        assert service.pipeline is not None
        return elapsed, cpu, service.pipeline.signals_out
    finally:
        await service.stop()
        await bus.close()
        await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--meters", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--bootstrap-servers", default=os.environ.get("OUTAGEDESK_TEST_KAFKA",
                                                                  "127.0.0.1:9092"))
    ap.add_argument("--database-url", default=DEFAULT_DB)
    ap.add_argument("--profile", default=None, help="write a cProfile of the ingest phase")
    ap.add_argument("--skip-raw", action="store_true", help="measure ingest only")
    args = ap.parse_args()

    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    src, sink = prefix + METER_EVENTS, prefix + "raw-sink"
    topology = synthetic_topology(args.meters)
    print(f"topology: {len(topology.customers)} meters, {len(topology.transformers)} "
          f"transformers, {len(topology.devices)} devices, {len(topology.feeders)} feeders")
    await create_topics(args.bootstrap_servers,
                        [src, sink, prefix + "grid.signals.v1", prefix + "grid.dead-letter.v1"],
                        args.partitions)
    msgs = events(args.events, args.meters, datetime.now(UTC))
    t = await produce_input(args.bootstrap_servers, src, msgs)
    print(f"produced {len(msgs)} meter events in {t:.1f}s ({len(msgs) / t:,.0f}/s)")

    n = args.events
    # The broker shares the machine's cores: its CPU per event is part of the cost. Measured
    # over each whole phase (start-up included); other clients of a shared broker count too.
    broker = broker_pid()
    raw_rate, raw_cpu = 0.0, 0.0
    if not args.skip_raw:
        broker_cpu = process_cpu_s(broker)
        raw_s, raw_cpu = await raw_ceiling(args.bootstrap_servers, src, sink, n, args.batch)
        broker_cpu = process_cpu_s(broker) - broker_cpu
        raw_rate = n / raw_s
        print(f"raw aiokafka consume+produce+commit: {raw_rate:,.0f} events/s ({raw_s:.1f}s, "
              f"{raw_cpu / n * 1e6:.0f} us CPU/event in this process"
              + (f", broker {broker_cpu / n * 1e6:.0f} us/event)" if broker else ")"))

    broker_cpu = process_cpu_s(broker)
    ing_s, ing_cpu, signals = await ingest(args.bootstrap_servers, prefix, topology, n,
                                           args.batch, args.database_url, args.profile)
    broker_cpu = process_cpu_s(broker) - broker_cpu
    ing_rate = n / ing_s
    print(f"ingest end to end (consume, normalise, signals acked, commit): "
          f"{ing_rate:,.0f} events/s ({ing_s:.1f}s, {ing_cpu / n * 1e6:.0f} us CPU/event"
          + (f", broker {broker_cpu / n * 1e6:.0f} us/event" if broker else "")
          + f", {signals} signals)")
    if raw_rate:
        print(f"ratio ingest/raw: {ing_rate / raw_rate:.0%} (CPU per event: "
              f"{raw_cpu / ing_cpu:.0%} of ingest's is the raw client's)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    await delete_topics(args.bootstrap_servers, prefix)


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        await admin.delete_topics(names)
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
