"""Storm benchmark of the whole stack (run on demand; not collected by pytest).

    python bench/storm.py [--customers 200000] [--lockout-share 0.6] [--seed 11]
        [--database-url URL] [--out storm.json] [--keep]

1. Generates a county of N customers (about one feeder per 2,500) and the compressed storm
   of tests/chaos/storm_scenario.py: breaker lockouts on ``--lockout-share`` of the feeders
   (a burst of last gasps from most of their customers within about 20 s), lossy fuse and
   transformer outages, calls, momentaries, upstream merges, a nested outage, restore waves
   about 95 s later, bad messages. Rule windows: 60 s (dwell/confirmation/momentary), 40 s
   nested check (the compressed policy file).
2. Starts a private Kafka broker (deploy/local/kafka.sh on free ports, fresh storage), a
   fresh database on the given PostgreSQL server, a local HTTP SMS gateway, and as separate
   processes ``serve ingest``, two ``serve incidents --no-api`` (one group, 6 partitions)
   and ``serve notify``.
3. Ceiling: plain aiokafka produces the same messages to a 6-partition topic, then consumes
   them and produces each one to a second topic (acks=all, idempotent), as ingest would.
4. Storm: produces every line at once (the burst), then measures until the stack is quiet:
   sustained end-to-end events/s (raw messages / time until incidents applied every
   signal), backlog drain time after the last line was acknowledged, detection latency
   (delivery of the last evidence at or before ``detected_at`` → ``opened`` published;
   single-customer outages excluded, their dwell is a rule), restoration latency (delivery
   of the last restore evidence at or before ``restored_at`` → ``restored`` published),
   messages/s at the gateway, and each process's peak RSS and CPU.
Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "chaos"))

from observe import end_offsets  # noqa: E402
from replay import encode, replay  # noqa: E402
from stack import (  # noqa: E402
    TOPIC_PARTITIONS,
    Gateway,
    PrivateKafka,
    Stack,
    StackConfig,
    all_topics,
    count,
    create_topics,
    fetch,
    fresh_database,
)
from storm_scenario import Windows, compressed_policy, county, storm_lines  # noqa: E402

DEFAULT_SERVER = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"
WINDOWS = Windows(sustained_s=60, nested_check_s=40)


async def ceiling(bootstrap: str, lines: list[dict[str, Any]]) -> dict[str, float]:
    """Raw aiokafka: produce the messages, then consume them and produce each again."""
    run = uuid.uuid4().hex[:8]
    src, dst = f"ceiling-{run}.in", f"ceiling-{run}.out"
    await create_topics(bootstrap, [src, dst], TOPIC_PARTITIONS)
    opts: dict[str, Any] = {"enable_idempotence": True, "acks": "all", "linger_ms": 5,
                            "max_batch_size": 256 * 1024}  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **opts)
    await producer.start()
    t0 = time.perf_counter()
    futures = []
    for line in lines:
        topic, value, key = encode(line)
        futures.append(await producer.send(src, value, key=key))
    await asyncio.gather(*futures)
    produce_s = time.perf_counter() - t0
    consumer = AIOKafkaConsumer(src, bootstrap_servers=bootstrap, group_id=f"ceiling-{run}",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_poll_records=5000)  # fmt: skip
    await consumer.start()
    t1 = time.perf_counter()
    seen = 0
    try:
        while seen < len(lines):
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            futures = []
            for records in batch.values():
                for r in records:
                    futures.append(await producer.send(dst, r.value, key=r.key))
            await asyncio.gather(*futures)
            if batch:
                await consumer.commit()
            seen += len(futures)
    finally:
        await consumer.stop()
        await producer.stop()
    relay_s = time.perf_counter() - t1
    return {"produce_per_s": len(lines) / produce_s, "consume_produce_per_s": len(lines) / relay_s}


def evidence_index(
    lines: list[dict[str, Any]], acked: dict[str, float], topology: dict[str, Any]
) -> tuple[dict[str, list[tuple[datetime, float]]], dict[str, list[tuple[datetime, float]]]]:
    """(outage evidence, restore evidence): customer or device id → (occurred_at, acked)."""
    customer_of = {c["meter"]: c["id"] for c in topology["customers"]}
    off: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    on: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for line in lines:
        v = line.get("value")
        if not isinstance(v, dict) or v.get("event_id") not in acked or "occurred_at" not in v:
            continue
        when, ack = datetime.fromisoformat(v["occurred_at"]), acked[v["event_id"]]
        kind = v.get("type") or v.get("kind") or v.get("state")
        who = customer_of.get(v.get("meter_id", "")) or v.get("customer_id") or v.get("device_id")
        if who is None:
            continue
        if kind in ("last_gasp", "no_power", "still_out", "open"):
            off[who].append((when, ack))
        elif kind in ("power_restore", "closed"):
            on[who].append((when, ack))
    return off, on


def latencies(
    events: list[tuple[dict[str, Any], float]],
    off: dict[str, list[tuple[datetime, float]]],
    on: dict[str, list[tuple[datetime, float]]],
) -> tuple[list[float], list[float]]:
    detect, restore = [], []
    for event, published in events:
        snap = event["incident"]
        if event["type"] == "opened" and snap.get("customer_id") is None:
            at = datetime.fromisoformat(snap["detected_at"])
            who = [c["customer_id"] for c in event["customers_added"]] + [snap.get("device_id")]
            acks = [a for w in who if w for t, a in off.get(w, ()) if t <= at]
            if acks:
                detect.append(published - max(acks))
        elif event["type"] == "restored" and snap.get("restored_at"):
            at = datetime.fromisoformat(snap["restored_at"])
            who = [c["customer_id"] for c in event["customers_restored"]] + [snap.get("device_id")]
            acks = [a for w in who if w for t, a in on.get(w, ()) if t <= at]
            if acks:
                restore.append(published - max(acks))
    return detect, restore


async def lifecycle_events(bootstrap: str) -> list[tuple[dict[str, Any], float]]:
    ends = await end_offsets(bootstrap, "incidents.lifecycle.v1")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[tuple[dict[str, Any], float]] = []
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        left = sum(ends.values())
        while left > 0:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                left -= len(records)
                out.extend((orjson.loads(r.value), r.timestamp / 1000) for r in records)
    finally:
        await consumer.stop()
    return out


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="outagedesk-storm-"))
    topology = county(args.customers, args.seed)
    (work / "topology.json").write_bytes(orjson.dumps(topology))
    (work / "policy.yaml").write_text(compressed_policy(WINDOWS))
    kafka = PrivateKafka("storm-kafka")
    await asyncio.to_thread(kafka.start, fresh=True)
    gateway: Gateway | None = None
    stack: Stack | None = None
    try:
        url = await fresh_database(args.database_url, "outagedesk_storm", work / "topology.json")
        await create_topics(kafka.bootstrap, all_topics(), TOPIC_PARTITIONS)
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
        lines = storm_lines(topology, base, WINDOWS, lockout_share=args.lockout_share)
        expected = {v["event_id"] for line in lines if isinstance(v := line.get("value"), dict)
                    and not str(v.get("event_id", "bad-")).startswith("bad-")}  # fmt: skip
        print(f"{len(topology['customers'])} customers, {len(lines)} messages", flush=True)
        ceil = await ceiling(kafka.bootstrap, lines)
        gateway = Gateway(work / "gateway.log")
        await gateway.wait_ready()
        stack = Stack(StackConfig("storm", url, kafka.bootstrap, work / "policy.yaml",
                                  gateway.url, work, incidents_consumers=2))  # fmt: skip
        stack.start()
        await asyncio.sleep(8)  # let the consumers join before the burst
        t0 = time.time()
        acked = await replay(lines, kafka.bootstrap, span_s=0)
        t_sent = time.time()
        applied_at = await _wait_applied(url, len(expected), stack, args.timeout)
        quiet_at = await _wait_quiet(url, stack, base, args.timeout)
        stack.sample()
        usage = {p.label: {"peak_rss_mb": round(p.usage.peak_rss_mb, 1),
                           "cpu_s": round(p.usage.cpu_s, 1),
                           "cpu_pct": round(100 * p.usage.cpu_s / (quiet_at - t0), 1)}
                 for p in stack.processes}  # fmt: skip
        stack.stop()
        events = await lifecycle_events(kafka.bootstrap)
        off, on = evidence_index(lines, acked, topology)
        detect, restore = latencies(events, off, on)
        sends = sorted(t for times in (await gateway.received()).values() for t in times)
        jobs = await count(url, "notify.jobs")
        incidents = await fetch(url, "SELECT kind, status, count(*) FROM incidents.incidents "
                                     "GROUP BY 1, 2 ORDER BY 1, 2")  # fmt: skip
        return {
            "customers": len(topology["customers"]),
            "messages": len(lines),
            "signals": len(expected),
            "ceiling_produce_per_s": round(ceil["produce_per_s"]),
            "ceiling_consume_produce_per_s": round(ceil["consume_produce_per_s"]),
            "burst_produce_s": round(t_sent - t0, 2),
            "end_to_end_events_per_s": round(len(lines) / (applied_at - t0)),
            "backlog_drain_s": round(applied_at - t_sent, 2),
            "detection_latency_p50_s": pct(detect, 0.5),
            "detection_latency_p99_s": pct(detect, 0.99),
            "detections": len(detect),
            "restored_latency_p50_s": pct(restore, 0.5),
            "restored_latency_p99_s": pct(restore, 0.99),
            "restorations": len(restore),
            "lifecycle_events": len(events),
            "notify_jobs": jobs,
            "messages_sent": len(sends),
            "notifications_per_s": round(len(sends) / max(1e-9, sends[-1] - sends[0]), 1)
            if len(sends) > 1 else None,
            "incidents": [list(r) for r in incidents],
            "until_quiet_s": round(quiet_at - t0, 1),
            "processes": usage,
        }
    finally:
        if stack is not None:
            stack.close()
        if gateway is not None:
            gateway.close()
        if not args.keep:
            await asyncio.to_thread(kafka.stop)


async def _wait_applied(url: str, n: int, stack: Stack, within_s: float) -> float:
    deadline = time.time() + within_s
    while await count(url, "incidents.processed_signals") < n:
        assert time.time() < deadline, "signals not applied in time"
        assert all(p.alive for p in stack.processes), "a service exited"
        stack.sample()
        await asyncio.sleep(0.2)
    return time.time()


async def _wait_quiet(url: str, stack: Stack, base: datetime, within_s: float) -> float:
    """Until the rule windows have passed and everything is published and sent."""
    settle = base + timedelta(seconds=WINDOWS.span_s + WINDOWS.nested_check_s + 20)
    deadline = time.time() + within_s
    while True:
        stack.sample()
        rows = await fetch(url, """SELECT
            (SELECT count(*) FROM incidents.outbox WHERE published_at IS NULL)
          + (SELECT count(*) FROM notify.jobs WHERE status IN ('pending', 'retry', 'sending')
               AND coalesce(next_attempt_at, due_at) <= now())
          + (SELECT count(*) FROM incidents.outbox WHERE topic LIKE '%lifecycle%')
          - (SELECT count(*) FROM notify.processed_events)""")
        if rows[0][0] == 0 and datetime.now(UTC) > settle:
            return time.time()
        assert time.time() < deadline, "the stack did not go quiet in time"
        await asyncio.sleep(1)


def print_table(result: dict[str, Any]) -> None:
    rows = [(k, v) for k, v in result.items() if k not in ("processes", "incidents")]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"{'process':<22} {'peak RSS MB':>12} {'CPU s':>8} {'CPU %':>7}")
    for name, u in result["processes"].items():
        print(f"{name:<22} {u['peak_rss_mb']:>12} {u['cpu_s']:>8} {u['cpu_pct']:>7}")
    print("incidents (kind, status, count):", result["incidents"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--lockout-share", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", default=DEFAULT_SERVER,
                        help="any database on the PostgreSQL server to use")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=Path("storm.json"))
    parser.add_argument("--keep", action="store_true", help="leave the private broker running")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
