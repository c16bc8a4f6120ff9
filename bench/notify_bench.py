"""Notify benchmark: a feeder outage of 100,000 customers on PostgreSQL.

Measures (1) the time from the ``opened`` lifecycle event to all 100,000 jobs being
durable (committed with the consumer offsets), and (2) sending paced at a configured rate
(default 1,000 messages/s) to a local HTTP SMS gateway running in another process, which
counts every message it receives by idempotency reference (duplicates). Also reports the
gateway-answer → commit window of the sender (the only admitted duplicate window).

Run: python bench/notify_bench.py [--customers 100000] [--rate 1000] [--send N]
[--profile FILE]. ``--send N`` sends only the first N jobs (the rest are cancelled before
the sending phase; default all), ``--send 0`` measures durability only; ``--profile``
writes cProfile stats of both phases (``FILE.durable``, ``FILE.send``); CPU seconds of
each phase are printed. Needs the local PostgreSQL (OUTAGEDESK_TEST_DATABASE_URL or the
default). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from schemas.topics import LIFECYCLE  # noqa: E402
from services.common.bus.base import OutMessage  # noqa: E402
from services.common.bus.memory import MemoryBus  # noqa: E402
from services.common.clock import WallClock  # noqa: E402
from services.common.db import create_engine, session_factory  # noqa: E402
from services.common.migrate import migrate_engine  # noqa: E402
from services.common.topology.model import (  # noqa: E402
    Contacts,
    Customer,
    Device,
    Feeder,
    Topology,
    Transformer,
)
from services.notify.channels.sms_http import SmsHttpChannel  # noqa: E402
from services.notify.entrypoints.service import NotifyService  # noqa: E402
from services.notify.service_settings import NotifyServiceSettings  # noqa: E402

DEFAULT_URL = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"
DATABASE = "outagedesk_n_bench"


# --- the gateway (a separate process, so it does not share the sender's CPU) ------------
def gateway_app() -> Any:
    counts: dict[str, int] = {}
    times: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            dups = sum(1 for n in counts.values() if n > 1)
            payload: dict[str, Any] = {
                "received": len(times), "distinct": len(counts), "duplicated": dups,
                "first": times[0] if times else None, "last": times[-1] if times else None,
                "cpu_s": time.process_time(), "steady": steady(times),
            }  # fmt: skip
        else:
            ref = json.loads(body)["reference"]
            counts[ref] = counts.get(ref, 0) + 1
            times.append(time.time())
            payload = {"id": str(len(times))}
        data = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    return app


def steady(times: list[float], skip_s: float = 2.0) -> dict[str, Any] | None:
    """Messages received per second over the steady window: whole seconds from ``skip_s``
    after the first message to the last whole second (the initial burst and the tail
    left out), and the slowest and fastest of those seconds."""
    if not times or times[-1] - times[0] < skip_s + 2:
        return None
    start = times[0] + skip_s
    seconds = int(times[-1] - start)
    per_s = [0] * seconds
    for t in times:
        i = int(t - start) if t >= start else -1
        if 0 <= i < seconds:
            per_s[i] += 1
    return {"window_s": seconds, "rate": round(sum(per_s) / seconds, 1),
            "slowest_s": min(per_s), "fastest_s": max(per_s)}  # fmt: skip


def run_gateway(port: int) -> None:
    import uvicorn

    uvicorn.run(gateway_app(), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


# --- the benchmark ------------------------------------------------------------------------
def topology(n: int) -> Topology:
    per_tx = 50
    customers = [
        Customer(f"C{i:06d}", f"M{i:06d}", f"T{i // per_tx:05d}", "residential",
                 language="zh-CN", quiet_hours="00:00-00:00",  # no quiet hours
                 contacts=Contacts(sms=f"+86138{i:08d}"))
        for i in range(n)
    ]
    transformers = [Transformer(f"T{t:05d}", "F01-BKR", 220, 1) for t in range(n // per_tx + 1)]
    return Topology.build([Feeder("F01", "Bench 10kV", "S1", "urban")],
                          [Device("F01-BKR", "F01", None, "breaker")], transformers, customers)


async def database(url: str) -> str:
    server = make_url(url)
    admin = server.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    return server.set(database=DATABASE).render_as_string(hide_password=False)


@contextlib.contextmanager
def phase(profile: str | None, name: str, cpu: dict[str, float]) -> Iterator[None]:
    """CPU seconds of this process during the phase (and a cProfile dump if asked)."""
    prof = cProfile.Profile(time.process_time) if profile else None  # CPU, not wall, time
    started = time.process_time()
    if prof is not None:
        prof.enable()
    try:
        yield
    finally:
        if prof is not None:
            prof.disable()
            prof.dump_stats(f"{profile}.{name}")
        cpu[name] = round(time.process_time() - started, 2)


async def bench(
    customers: int, rate: float, port: int, send: int | None = None, profile: str | None = None
) -> dict[str, Any]:
    url = await database(os.environ.get("OUTAGEDESK_TEST_DATABASE_URL", DEFAULT_URL))
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text('DROP SCHEMA IF EXISTS "notify" CASCADE'))
    await migrate_engine(engine, schemas=["notify"])
    clock, bus = WallClock(), MemoryBus()
    burst = max(1.0, rate / 4)  # rounds of a quarter second of tokens
    gateway = f"http://127.0.0.1:{port}/sms"
    settings = NotifyServiceSettings(
        database_url=url, notify_poll_timeout_s=0.0, sms_gateway_url=gateway,
        channel_rates={"sms": (rate, burst)}, survey_rate=0.0,
        notify_sender_batch=int(burst), notify_sender_concurrency=16,
    )  # fmt: skip
    sms = SmsHttpChannel(gateway, max_connections=16)
    service = NotifyService(settings, bus, session_factory(engine), clock,
                            topology(customers), {"sms": sms})  # fmt: skip
    await service.start()
    now = clock.now()
    detected = now - timedelta(minutes=10)  # sustained already: every notice is due now
    event = {
        "event_id": "BENCH:1", "incident_id": "BENCH", "seq": 1, "type": "opened",
        "occurred_at": now.isoformat(), "actor": "system",
        "incident": {"id": "BENCH", "kind": "outage", "status": "detected",
                     "feeder_id": "F01", "device_id": "F01-BKR", "area": "urban",
                     "detected_at": detected.isoformat()},
        "customers_added": [f"C{i:06d}" for i in range(customers)],
        "customers_restored": [],
    }  # fmt: skip
    producer = await bus.producer()
    await producer.send([OutMessage(LIFECYCLE, orjson.dumps(event), b"BENCH")])
    cpu: dict[str, float] = {}
    started = time.perf_counter()
    with phase(profile, "durable", cpu):
        applied = await service.run_once()
    durable_s = time.perf_counter() - started
    print(f"durable: {durable_s:.2f} s wall, {cpu['durable']} s CPU", flush=True)  # noqa: T201
    async with engine.begin() as conn:
        jobs = (await conn.execute(text("SELECT count(*) FROM notify.jobs"))).scalar()
        if send is not None and send < customers:
            # keep the first ``send`` jobs: a shorter sending phase at the same rate
            await conn.execute(text(
                "UPDATE notify.jobs SET status = 'cancelled', next_attempt_at = NULL "
                "WHERE id NOT IN (SELECT id FROM notify.jobs ORDER BY id LIMIT :n)"),
                {"n": send})  # fmt: skip
    assert applied == 1, applied
    assert jobs == customers, jobs
    if send == 0:
        await service.stop()
        await sms.aclose()
        await engine.dispose()
        return {"customers": customers, "jobs_durable_s": round(durable_s, 2),
                "jobs_durable_cpu_s": cpu["durable"]}  # fmt: skip

    async with httpx.AsyncClient() as client:
        gateway_cpu = (await client.get(gateway)).json()["cpu_s"]
    send_started = time.perf_counter()
    with phase(profile, "send", cpu):
        while True:  # as the service's own loop runs the sender (rounds carried over)
            nxt = await service.run_due(drain=False)
            if nxt is None:
                break
            await clock.sleep_until(nxt)
        await service.sender.drain()
    send_s = time.perf_counter() - send_started
    while await service.relay_once():
        pass
    async with httpx.AsyncClient() as client:
        stats = (await client.get(gateway)).json()
    windows = sorted(service.sender.commit_windows_s)
    paced = (stats["received"] - burst) / (stats["last"] - stats["first"])
    async with engine.connect() as conn:
        sent = (await conn.execute(text(
            "SELECT count(*) FROM notify.jobs WHERE status = 'sent'"))).scalar()  # fmt: skip
    await service.stop()
    await sms.aclose()
    await engine.dispose()
    return {
        "customers": customers,
        "jobs_durable_s": round(durable_s, 2),
        "jobs_durable_cpu_s": cpu["durable"],
        "jobs_per_s": round(customers / durable_s),
        "send_wall_s": round(send_s, 2),
        "send_cpu_s": cpu["send"],
        "configured_rate": rate,
        "gateway_rate_after_burst": round(paced, 1),
        "gateway_steady": stats["steady"],
        "sender_cpu_ms_per_msg": round(1000 * cpu["send"] / max(1, stats["received"]), 3),
        "gateway_cpu_ms_per_msg": round(
            1000 * (stats["cpu_s"] - gateway_cpu) / max(1, stats["received"]), 3),
        "rate_error_pct": round(100 * (paced - rate) / rate, 2),
        "gateway_received": stats["received"],
        "gateway_distinct": stats["distinct"],
        "gateway_duplicated": stats["duplicated"],
        "jobs_sent": sent,
        "deliveries_published": len(bus.records("notify.deliveries.v1")),
        "commit_window_ms_p50": round(1000 * statistics.median(windows), 1),
        "commit_window_ms_p99": round(1000 * windows[int(0.99 * (len(windows) - 1))], 1),
        "commit_window_ms_max": round(1000 * windows[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--port", type=int, default=18931)
    parser.add_argument("--send", type=int, default=None, help="send only the first N jobs")
    parser.add_argument("--profile", default=None, help="cProfile dump prefix")
    parser.add_argument("--gateway", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gateway:
        run_gateway(args.port)
        return
    proc = subprocess.Popen([sys.executable, __file__, "--gateway", "--port", str(args.port)])  # noqa: S603
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{args.port}/", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        result = asyncio.run(bench(args.customers, args.rate, args.port, args.send,
                                   args.profile))
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(result, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
