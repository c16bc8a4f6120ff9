"""Storm benchmark of the whole stack (run on demand; not collected by pytest).

    python bench/storm.py [--customers 200000] [--lockout-share 0.6] [--seed 11]
        [--database-url URL] [--timeout S] [--out storm.json] [--keep] [--batch-size N]

1. Generates a county of N customers (about one feeder per 2,500) and the compressed storm
   of tests/chaos/storm_scenario.py: breaker lockouts on ``--lockout-share`` of the feeders
   (a burst of last gasps from most of their customers within about 20 s), lossy fuse and
   transformer outages, calls, momentaries, upstream merges, a nested outage, restore waves
   about 95 s later, bad messages. Rule windows: 60 s (dwell/confirmation/momentary), 40 s
   nested check (the compressed policy file).
2. Starts a private Kafka broker (deploy/local/kafka.sh on free ports, fresh storage), a
   fresh database ``outagedesk_<--name>`` on the given PostgreSQL server (left for
   inspection; dropped by the next run of that name), a local HTTP SMS gateway, and as
   separate processes ``serve ingest``, two ``serve incidents --no-api`` (one group, 6
   partitions) and ``serve notify``; waits until every consumer holds its partitions.
3. Ceiling, on the same broker before the stack starts: plain aiokafka produces the same
   messages (same keys and sizes, 6 partitions, acks=all, idempotent), then consumes them
   and produces each one to a second topic, committing per batch, as ingest would.
   ``ceiling_per_s`` = messages / (produce + consume-and-produce time).
4. Storm: the storm's event times start at the burst, which produces every line at once
   (restore waves arrive ahead of their event time; timers fall due on the wall clock),
   then measures until the stack is quiet:
   - ``end_to_end_events_per_s``: messages / (first send → incidents stored every valid
     signal); ``share_of_ceiling`` = that / ``ceiling_per_s``;
   - ``backlog_drain_s``: last message acknowledged → every signal stored;
   - detection latency: ``opened`` published (its record timestamp) minus the earliest
     moment the evidence allowed it: the SCADA open of its device or the second OFF
     evidence in its scope, whichever was acknowledged first (an upper bound); for a
     single-customer outage the later of its evidence and ``detected_at`` + dwell, so the
     figure is beyond the dwell; nested outages (a timer rule) are left out;
   - restored event latency: ``restored`` published minus the acknowledgement of the
     evidence whose time is ``restored_at`` (device close or power_restore);
   - restored message latency: first arrival of a customer's ``restored`` SMS at the
     gateway minus the later of its job's ``due_at`` (the restoration, or the nested check
     for a restoration only inferred) and the acknowledgement of its restore evidence;
   - notifications/s over first → last message and the best 5-s window; each process's
     peak RSS (VmHWM) and CPU; how often each consumer joined its group (1 = no rebalance).
   Latencies under an all-at-once burst include the time the evidence waited in the
   backlog. Prints a table and writes JSON (``--out``).
A service that exits fails the run at once (with its log tail); Ctrl-C, SIGTERM or any
failure stops the services, the gateway and the private broker (``--keep``: not the broker).
Logs of every process stay in the printed work directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "chaos")]  # runnable without install

from observe import end_offsets  # noqa: E402
from replay import encode, replay  # noqa: E402
from stack import (  # noqa: E402
    TOPIC_PARTITIONS,
    Gateway,
    PrivateKafka,
    ServiceProcess,
    Stack,
    StackConfig,
    all_topics,
    asyncpg_dsn,
    count,
    create_topics,
    fetch,
    fresh_database,
)
from storm_scenario import Windows, compressed_policy, county, storm_lines  # noqa: E402

DEFAULT_SERVER = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"
WINDOWS = Windows(sustained_s=60, nested_check_s=40)
APPLIED_SIGNALS = ("SELECT sum(next_offset) FROM incidents.consumer_offsets "
                   "WHERE group_id = 'incidents' AND topic = 'grid.signals.v1'")  # fmt: skip
# Lifecycle events not yet published or handled by notify, and messages due but not sent.
WORK_LEFT = """SELECT
    (SELECT count(*) FROM incidents.outbox WHERE published_at IS NULL)
  + (SELECT count(*) FROM notify.jobs WHERE status IN ('pending', 'retry', 'sending')
       AND coalesce(next_attempt_at, due_at) <= now())
  + (SELECT count(*) FROM incidents.outbox WHERE topic LIKE '%lifecycle%')
  - (SELECT count(*) FROM notify.processed_events)"""
T = TypeVar("T")


async def ceiling(bootstrap: str, lines: list[dict[str, Any]], within_s: float) -> dict[str, float]:
    """Raw aiokafka on the same broker and the same messages (same keys, 6 partitions): produce
    them (acks=all, idempotent, like the burst), then consume them and produce each one to a
    second topic committing offsets per batch, as ingest would. Rates in messages/s."""
    run = uuid.uuid4().hex[:8]
    src, dst = f"ceiling-{run}.in", f"ceiling-{run}.out"
    await create_topics(bootstrap, [src, dst], TOPIC_PARTITIONS)
    opts: dict[str, Any] = {"enable_idempotence": True, "acks": "all", "linger_ms": 5,
                            "max_batch_size": 256 * 1024}  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **opts)
    await producer.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"ceiling-{run}",
                                enable_auto_commit=False, max_poll_records=5000)  # fmt: skip
    try:
        async with asyncio.timeout(within_s):
            t0 = time.perf_counter()
            futures = []
            for line in lines:
                _, value, key = encode(line)
                futures.append(await producer.send(src, value, key=key))
            await asyncio.gather(*futures)
            produce_s = time.perf_counter() - t0
            await consumer.start()
            # assigned, not subscribed: no group join (with the broker's initial rebalance
            # delay) inside the measurement; offsets are still committed to the group
            tps = [TopicPartition(src, p) for p in range(TOPIC_PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            t1 = time.perf_counter()
            seen = 0
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
            relay_s = time.perf_counter() - t1
    finally:
        await consumer.stop()
        await producer.stop()
    n = len(lines)
    return {"produce_per_s": n / produce_s, "consume_produce_per_s": n / relay_s,
            "per_s": n / (produce_s + relay_s)}  # fmt: skip


Evidence = dict[str, list[tuple[datetime, float]]]  # customer or device id → (occurred, ack)


def evidence_index(
    lines: list[dict[str, Any]], acked: dict[str, float], topology: dict[str, Any]
) -> tuple[Evidence, Evidence]:
    """(outage evidence, restore evidence): customer or device id → (occurred_at, acked)."""
    customer_of = {c["meter"]: c["id"] for c in topology["customers"]}
    off: Evidence = defaultdict(list)
    on: Evidence = defaultdict(list)
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


def detection_latencies(
    events: list[tuple[dict[str, Any], float]], off: Evidence, dwell_s: float
) -> tuple[list[float], int]:
    """Seconds from the earliest moment the evidence allowed an ``opened`` to its publication
    (an upper bound of the service's delay): a device's SCADA open or the second OFF evidence
    in its scope, whichever was acknowledged first; for a single-customer outage the later of
    its first evidence and ``detected_at`` + the dwell, so the figure is beyond the dwell.
    Nested outages (opened by the nested-check timer) are left out; their number is returned."""
    out: list[float] = []
    nested = 0
    for event, published in events:
        if event["type"] != "opened":
            continue
        snap = event["incident"]
        if snap.get("parent_incident_id"):
            nested += 1
            continue
        if snap.get("customer_id"):
            acks = sorted(a for _, a in off.get(snap["customer_id"], ()))
            if not acks:
                continue
            due = datetime.fromisoformat(snap["detected_at"]).timestamp() + dwell_s
            out.append(published - max(acks[0], due))
            continue
        added = [c["customer_id"] for c in event["customers_added"]]
        scope = sorted(a for c in added for _, a in off.get(c, ()))
        candidates = scope[1:2] + [a for _, a in off.get(snap.get("device_id") or "", ())]
        if candidates:
            out.append(published - min(candidates))
    return out, nested


def restoration_latencies(events: list[tuple[dict[str, Any], float]], on: Evidence) -> list[float]:
    """Seconds from the acknowledgement of the evidence that restored an incident (the device
    close or power_restore whose time is ``restored_at``; else its earliest restore evidence)
    to the publication of its ``restored`` lifecycle event."""
    out: list[float] = []
    for event, published in events:
        snap = event["incident"]
        if event["type"] != "restored" or not snap.get("restored_at"):
            continue
        at = datetime.fromisoformat(snap["restored_at"])
        who = [c["customer_id"] for c in event["customers_restored"]] + [snap.get("device_id")]
        evidence = [(t, a) for w in who if w for t, a in on.get(w, ()) if t <= at]
        exact = [a for t, a in evidence if t == at]
        if exact or evidence:
            out.append(published - min(exact or [a for _, a in evidence]))
    return out


async def restored_message_latencies(
    url: str, received: dict[str, list[float]], on: Evidence
) -> list[float]:
    """Seconds from the moment a customer's ``restored`` SMS became due (its job's ``due_at``:
    the restoration, or the nested check for a restoration that was only inferred), or from
    the acknowledgement of the customer's restore evidence if later, to its first arrival at
    the gateway."""
    rows = await fetch(url, "SELECT incident_id, customer_id, revision, due_at FROM notify.jobs "
                            "WHERE stage = 'restored'")  # fmt: skip
    out: list[float] = []
    for incident, customer, revision, due_at in rows:
        times = received.get(f"{incident}:{customer}:restored:{revision}")
        if times:
            acks = [a for _, a in on.get(customer, ())]
            out.append(min(times) - max([due_at.timestamp(), *acks[:1]]))
    return out


async def lifecycle_events(bootstrap: str, within_s: float = 120) -> list[tuple[Any, float]]:
    """Every lifecycle event with its publication time (the relay's record timestamp)."""
    ends = await end_offsets(bootstrap, "incidents.lifecycle.v1")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[tuple[Any, float]] = []
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        async with asyncio.timeout(within_s):
            while len(out) < sum(ends.values()):
                for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                    out.extend((orjson.loads(r.value), r.timestamp / 1000) for r in records)
    finally:
        await consumer.stop()
    return out


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def peak_rate(times: list[float], window_s: float = 5.0) -> float | None:
    """The highest count of ``times`` in any ``window_s`` window, per second."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return round(best / window_s, 1) if times else None


class Resources:
    """What a run starts and must tear down, also on Ctrl-C, SIGTERM or a failure."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.kafka: PrivateKafka | None = None
        self.gateway: Gateway | None = None
        self.stack: Stack | None = None

    def close(self) -> None:
        if self.stack is not None:
            for p in self.stack.processes:
                p.terminate(timeout=5)  # SIGTERM, SIGKILL if it does not exit in time
            self.stack.close()
            self.stack = None
        if self.gateway is not None:
            self.gateway.close()
            self.gateway = None
        if self.kafka is not None and not self.keep:
            self.kafka.stop()
            self.kafka = None


class ServerCpu:
    """CPU seconds of the database server (postmaster, its live backends and the ones it
    reaped) and of the private broker, read from /proc; None where not on this machine."""

    def __init__(self, postmaster: int | None, broker: int | None) -> None:
        self.pids = {"postgres": postmaster, "kafka": broker}

    @classmethod
    async def find(cls, url: str, kafka: PrivateKafka) -> ServerCpu:
        # the postmaster is the one process started with the data directory as argument
        data_dir = str((await fetch(url, "SHOW data_directory"))[0][0])
        return cls(_pid_with(data_dir), _pid_with(str(kafka.state_dir)))

    def cpu_s(self) -> dict[str, float | None]:
        ticks = os.sysconf("SC_CLK_TCK")
        stats: dict[int, tuple[int, list[int]]] = {}  # one read of every process
        for each in _pids():
            with contextlib.suppress(OSError):  # exited meanwhile
                stats[each] = _stat(each)
        out: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            if pid is None or pid not in stats:
                out[name] = None
                continue
            kids = sum(sum(t[:2]) for parent, t in stats.values() if parent == pid)
            out[name] = (sum(stats[pid][1]) + kids) / ticks
        return out


def _stat(pid: int) -> tuple[int, list[int]]:
    """(parent pid, [utime, stime, cutime, cstime]) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), [int(x) for x in fields[11:15]]


def _pids() -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]


def _pid_with(text: str) -> int | None:
    """The first process whose command line contains ``text``."""
    return next((pid for pid in _pids() if text in _cmdline(Path(f"/proc/{pid}"))), None)


def _cmdline(d: Path) -> str:
    try:
        return (d / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


class ServiceDied(RuntimeError):
    pass


async def guarded(stack: Stack, work: Awaitable[T], period_s: float = 0.5) -> T:
    """Await ``work`` while sampling every process's usage; raise ServiceDied (with the tail
    of its log) as soon as a service exits instead of waiting for a timeout."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=period_s)
            if done:
                return task.result()
            stack.sample()
            for p in stack.processes:
                if not p.alive:
                    assert p.proc is not None
                    tail = "\n".join(p.log_text().splitlines()[-30:])
                    raise ServiceDied(f"{p.label} exited with status {p.proc.returncode}; "
                                      f"log {p.log_path} ends:\n{tail}")  # fmt: skip
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


GROUPS = {"ingest": "ingest", "incidents": "incidents", "notify": "notify"}  # label → group
ASSIGNED = re.compile(r"Setting newly assigned partitions \{(.*)\} for group (\S+)\"")
PARTITION = re.compile(r"topic='([^']+)', partition=(\d+)")


def _group_of(p: ServiceProcess) -> str:
    return next(g for k, g in GROUPS.items() if k in p.label)


def assignments(p: ServiceProcess) -> set[tuple[str, int]] | None:
    """The partitions of its main group the process holds now, from its log (aiokafka logs
    every assignment and revocation; the admin client's DescribeGroups decoding is broken)."""
    group, held = _group_of(p), None
    for line in p.log_text().splitlines():
        if f"for group {group}\"" not in line:
            continue
        if "Revoking previously assigned partitions" in line:
            held = None
        elif m := ASSIGNED.search(line):
            held = {(t, int(n)) for t, n in PARTITION.findall(m.group(1))}
    return held


async def wait_groups(stack: Stack, within_s: float, stable_s: float = 3.0) -> None:
    """Until every service started and its consumers hold all partitions of their topics
    (the incidents pair sharing the signals' six), unchanged for ``stable_s``."""
    async with asyncio.timeout(within_s):
        since: float | None = None
        while True:
            held = [assignments(p) for p in stack.processes]
            ok = all(h for h in held) and all(
                f"{_group_of(p)} started" in p.log_text() for p in stack.processes
            )
            signals = [h for p, h in zip(stack.processes, held, strict=True)
                       if "incidents" in p.label]  # fmt: skip
            ok = ok and sum(len(h or ()) for h in signals) == TOPIC_PARTITIONS
            ok = ok and len(set().union(*(h or set() for h in signals))) == TOPIC_PARTITIONS
            since = (since or time.monotonic()) if ok else None
            if since is not None and time.monotonic() - since >= stable_s:
                return
            await asyncio.sleep(0.5)


def rejoins(stack: Stack) -> dict[str, int]:
    """How often each process joined its main consumer group (1 = no rebalance after start)."""
    return {p.label: p.log_text().count(f"Joined group '{_group_of(p)}'") for p in stack.processes}


async def run(args: argparse.Namespace, res: Resources) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="outagedesk-storm-"))
    print(f"work directory (logs): {work}", flush=True)
    topology = county(args.customers, args.seed)
    (work / "topology.json").write_bytes(orjson.dumps(topology))
    (work / "policy.yaml").write_text(compressed_policy(WINDOWS))
    res.kafka = kafka = PrivateKafka(f"{args.name}-kafka")
    await asyncio.to_thread(kafka.start, fresh=True)
    url = await fresh_database(args.database_url, f"outagedesk_{args.name}", work / "topology.json")
    await create_topics(kafka.bootstrap, all_topics(), TOPIC_PARTITIONS)
    probe = storm_lines(topology, datetime.now(UTC), WINDOWS, lockout_share=args.lockout_share)
    print(f"{len(topology['customers'])} customers, {len(probe)} messages", flush=True)
    ceil = await ceiling(kafka.bootstrap, probe, args.timeout)
    print(f"ceiling: {ceil['per_s']:.0f} messages/s produced+consumed", flush=True)
    res.gateway = gateway = Gateway(work / "gateway.log")
    await gateway.wait_ready()
    extra = ({"OUTAGEDESK_CONSUMER_BATCH_SIZE": str(args.batch_size)}
             if args.batch_size else {})  # fmt: skip
    res.stack = stack = Stack(StackConfig(args.name, url, kafka.bootstrap, work / "policy.yaml",
                                          gateway.url, work, incidents_consumers=2,
                                          extra_env=extra))  # fmt: skip
    stack.start()
    await guarded(stack, wait_groups(stack, args.timeout))
    # The storm's event times start at the burst: evidence is delivered as it happens (the
    # restore waves ahead of their time), and every timer falls due on the wall clock.
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    lines = storm_lines(topology, base, WINDOWS, lockout_share=args.lockout_share)
    expected = {v["event_id"] for line in lines if isinstance(v := line.get("value"), dict)
                and not str(v.get("event_id", "bad-")).startswith("bad-")}  # fmt: skip
    print(f"burst of {len(lines)} messages at {base.isoformat()}", flush=True)
    servers = await ServerCpu.find(url, kafka)
    server_cpu0 = servers.cpu_s()
    t0 = time.time()
    acked = await guarded(stack, replay(lines, kafka.bootstrap, span_s=0))
    t_sent = time.time()
    print(f"burst acknowledged in {t_sent - t0:.1f}s; waiting for the stack", flush=True)
    applied_at = await guarded(stack, _wait_applied(url, len(expected), args.timeout, stack,
                                                    servers))  # fmt: skip
    print(f"all {len(expected)} signals applied after {applied_at - t0:.1f}s", flush=True)
    quiet_at = await guarded(stack, _wait_quiet(url, base, args.timeout))
    stack.sample()
    usage = {p.label: {"peak_rss_mb": round(p.usage.peak_rss_mb, 1),
                       "cpu_s": round(p.usage.cpu_s, 1),
                       "cpu_pct": round(100 * p.usage.cpu_s / (quiet_at - t0), 1)}
             for p in stack.processes}  # fmt: skip
    for name, cpu in servers.cpu_s().items():
        before = server_cpu0[name]
        if cpu is not None and before is not None:
            usage[name] = {"peak_rss_mb": None, "cpu_s": round(cpu - before, 1),
                           "cpu_pct": round(100 * (cpu - before) / (quiet_at - t0), 1)}  # fmt: skip
    joins = rejoins(stack)
    exits = stack.stop()
    events = await lifecycle_events(kafka.bootstrap)
    off, on = evidence_index(lines, acked, topology)
    detect, nested = detection_latencies(events, off, WINDOWS.sustained_s)
    restore = restoration_latencies(events, on)
    received = await gateway.received()
    told = await restored_message_latencies(url, received, on)
    sends = sorted(t for times in received.values() for t in times)
    incidents = await fetch(url, "SELECT kind, status, count(*) FROM incidents.incidents "
                                 "GROUP BY 1, 2 ORDER BY 1, 2")  # fmt: skip
    e2e = len(lines) / (applied_at - t0)
    return {
        "customers": len(topology["customers"]),
        "messages": len(lines),
        "signals": len(expected),
        "dead_letters": await count(url, "ingest.dead_letters"),
        "ceiling_produce_per_s": round(ceil["produce_per_s"]),
        "ceiling_consume_produce_per_s": round(ceil["consume_produce_per_s"]),
        "ceiling_per_s": round(ceil["per_s"]),
        "burst_produce_s": round(t_sent - t0, 2),
        "end_to_end_events_per_s": round(e2e),
        "share_of_ceiling": round(e2e / ceil["per_s"], 3),
        "backlog_drain_s": round(applied_at - t_sent, 2),
        "detection_latency_p50_s": pct(detect, 0.5),
        "detection_latency_p99_s": pct(detect, 0.99),
        "detection_latency_min_s": round(min(detect), 3) if detect else None,
        "detections": len(detect),
        "nested_detections_left_out": nested,
        "restored_event_latency_p50_s": pct(restore, 0.5),
        "restored_event_latency_p99_s": pct(restore, 0.99),
        "restored_event_latency_min_s": round(min(restore), 3) if restore else None,
        "restorations": len(restore),
        "restored_message_latency_p50_s": pct(told, 0.5),
        "restored_message_latency_p99_s": pct(told, 0.99),
        "restored_message_latency_min_s": round(min(told), 3) if told else None,
        "restored_messages": len(told),
        "lifecycle_events": len(events),
        "notify_jobs": await count(url, "notify.jobs"),
        "messages_sent": len(sends),
        "messages_distinct": len(received),
        "notifications_per_s": round(len(sends) / max(1e-9, sends[-1] - sends[0]), 1)
        if len(sends) > 1 else None,
        "notifications_peak_per_s": peak_rate(sends),
        "incidents": [list(r) for r in incidents],
        "until_quiet_s": round(quiet_at - t0, 1),
        "consumer_group_joins": joins,
        "exit_status": exits,
        "processes": usage,
        "load_average": os.getloadavg(),
        "work_dir": str(work),
    }


async def _wait_applied(
    url: str, n: int, within_s: float, stack: Stack | None = None, servers: ServerCpu | None = None
) -> float:
    """Until incidents stored every valid signal of the storm; the time.time() it did.

    Polled as the sum of the incidents consumer's stored signal offsets (six rows, stored in
    the transaction that stores the signals), over one connection: ``count(*)`` of
    ``processed_signals`` every 0.2 s over a new connection each time cost the database
    server 8 s of the 200,000-customer storm. The count confirms the result once.
    With ``stack``, prints a line a second: signals stored, each process's CPU share in
    that second (the database server's and broker's too, given ``servers``) and the whole
    machine's."""
    done, started = 0, time.time()

    def cpu() -> dict[str, float | None]:
        assert stack is not None
        stack.sample()
        prefix = stack.cfg.name + "-"
        own = {p.label.removeprefix(prefix): p.usage.cpu_s for p in stack.processes}
        return own | (servers.cpu_s() if servers is not None else {})

    last = (started, _machine_busy(), cpu() if stack else {})
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        async with asyncio.timeout(within_s):
            while True:
                done = int(await conn.fetchval(APPLIED_SIGNALS) or 0)
                if done >= n:
                    at = time.time()
                    stored = await conn.fetchval("SELECT count(*) FROM incidents.processed_signals")
                    if stored != n:
                        raise RuntimeError(f"{done} signals consumed but {stored} stored, not {n}")
                    return at
                await asyncio.sleep(0.2)
                if stack is not None and time.time() - last[0] >= 1.0:
                    now, busy, used = time.time(), _machine_busy(), cpu()
                    span = now - last[0]
                    shares = " ".join(
                        f"{k}={100 * (v - b) / span:.0f}%"
                        for k, v in used.items() if v is not None and (b := last[2].get(k))
                        is not None
                    )  # fmt: skip
                    machine = 100 * (busy[0] - last[1][0]) / max(1, busy[1] - last[1][1])
                    print(f"  {now - started:6.1f}s stored {done:>7}  {shares}  "
                          f"machine={machine:.0f}%", flush=True)  # fmt: skip
                    last = (now, busy, used)
    except TimeoutError:
        raise TimeoutError(f"only {done} of {n} signals stored after {time.time() - started:.0f}s"
                           " (--timeout)") from None  # fmt: skip
    finally:
        await conn.close()


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


async def _wait_quiet(url: str, base: datetime, within_s: float) -> float:
    """Until the rule windows have passed and everything is published and sent."""
    settle = base + timedelta(seconds=WINDOWS.span_s + WINDOWS.nested_check_s + 20)
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        async with asyncio.timeout(within_s):
            while True:
                left = await conn.fetchval(WORK_LEFT)
                if left == 0 and datetime.now(UTC) > settle:
                    return time.time()
                await asyncio.sleep(1)
    finally:
        await conn.close()


def print_table(result: dict[str, Any]) -> None:
    skip = ("processes", "incidents", "consumer_group_joins", "exit_status")
    rows = [(k, v) for k, v in result.items() if k not in skip]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"{'process':<22} {'peak RSS MB':>12} {'CPU s':>8} {'CPU %':>7} {'joins':>6}")
    for name, u in result["processes"].items():
        joins = result["consumer_group_joins"].get(name, "")
        rss = "" if u["peak_rss_mb"] is None else u["peak_rss_mb"]
        print(f"{name:<22} {rss:>12} {u['cpu_s']:>8} {u['cpu_pct']:>7} {joins:>6}")
    print("incidents (kind, status, count):", result["incidents"])
    print("exit status after SIGTERM:", result["exit_status"])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--lockout-share", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", default=DEFAULT_SERVER,
                        help="any database on the PostgreSQL server to use")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds each phase may take before the run fails")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("storm.json"))
    parser.add_argument("--keep", action="store_true", help="leave the private broker running")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="OUTAGEDESK_CONSUMER_BATCH_SIZE of every service (default: "
                             "the services' own, 500)")  # fmt: skip
    parser.add_argument("--name", default="storm",
                        help="run name: broker state <name>-kafka, database outagedesk_<name>"
                             " (two runs at once need different names)")  # fmt: skip
    args = parser.parse_args()
    res = Resources(keep=args.keep)
    signal.signal(signal.SIGTERM, _interrupt)  # same clean-up as Ctrl-C
    # Ctrl-C works even when started from a script that ignores SIGINT in background jobs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = asyncio.run(run(args, res))
    except KeyboardInterrupt:
        print("interrupted: stopping the services and the private broker", file=sys.stderr)
        sys.exit(130)
    finally:
        res.close()
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
