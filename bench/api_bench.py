"""API latency benchmark: 5,000 open incidents on PostgreSQL, GET list and detail at a fixed
rate through a real uvicorn server.

Run: python bench/api_bench.py [--rate 200] [--seconds 20] [--incidents 5000]
Uses its own database ``outagedesk_i2_bench`` on OUTAGEDESK_TEST_DATABASE_URL's server
(default: the deploy/local PostgreSQL). The server runs in a child process (one uvicorn
worker) so the load generator does not share its event loop. Open-loop load: request k is
due at t0 + k/rate, at most --concurrency in flight. Prints p50/p90/p99/max per route.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# runnable as `python bench/api_bench.py` from anywhere (the editable install maps no `services`)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_URL = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"
DATABASE = "outagedesk_i2_bench"
SECRET = "bench-secret-0123456789abcdef0123456789"
STATUSES = ("detected", "confirmed", "dispatched", "on_site")
AREAS = ("urban", "rural", "remote")


def _db_url() -> str:
    server = os.environ.get("OUTAGEDESK_TEST_DATABASE_URL", DEFAULT_URL)
    return make_url(server).set(database=DATABASE).render_as_string(hide_password=False)


async def seed(n: int) -> list[str]:
    from services.common.db import create_engine
    from services.common.migrate import migrate_engine
    from services.incidents import orm

    url = make_url(_db_url())
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    engine = create_engine(_db_url())
    rng = random.Random(7)
    base = datetime(2026, 7, 14, tzinfo=UTC)
    ids: list[str] = []
    try:
        await migrate_engine(engine)
        async with engine.begin() as c:
            await c.execute(sa.text("TRUNCATE incidents.incidents, incidents.timeline"))
            rows, timeline = [], []
            for k in range(n):
                iid = f"OUT-F{k % 250:03d}-{k:06d}"
                ids.append(iid)
                at = base + timedelta(seconds=17 * k)
                snap = {
                    "id": iid, "kind": "outage", "status": STATUSES[k % 4],
                    "feeder_id": f"F{k % 250:03d}", "device_id": f"F{k % 250:03d}-R1-FU{k % 8}",
                    "transformer_id": None, "customer_id": None, "area": AREAS[k % 3],
                    "detected_at": at.isoformat(), "confirmed_at": at.isoformat(),
                    "acknowledged_at": None, "etr": None, "restored_at": None, "closed_at": None,
                    "cause": None, "parent_incident_id": None, "merged_into": None,
                    "crew_id": None, "arrived_at": None, "customers_affected": 40 + k % 300,
                    "customers_out": 40 + k % 300, "etr_slips": 0,
                    "sla": {"acknowledge": "on_track"},
                }  # fmt: skip
                rows.append({
                    "id": iid, "kind": "outage", "status": snap["status"],
                    "feeder_id": snap["feeder_id"], "device_id": snap["device_id"],
                    "area": snap["area"], "detected_at": at, "confirmed_at": at,
                    "customers_affected": snap["customers_affected"],
                    "customers_out": snap["customers_out"], "customer_minutes": 0.0,
                    "etr_slips": 0, "seq": 2, "version": 1 + rng.randrange(5),
                    "sla": snap["sla"], "impact": None, "snapshot": snap, "updated_at": at,
                })  # fmt: skip
                for n_ in (1, 2):
                    timeline.append({"incident_id": iid, "n": n_, "at": at, "actor": "correlator",
                                     "type": "opened" if n_ == 1 else "confirmed",
                                     "detail": "bench"})  # fmt: skip
            for i in range(0, len(rows), 1000):
                await c.execute(sa.insert(orm.incidents), rows[i : i + 1000])
                await c.execute(sa.insert(orm.timeline), timeline[2 * i : 2 * i + 2000])
            await c.execute(sa.text("ANALYZE incidents.incidents"))
    finally:
        await engine.dispose()
    return ids


def serve(port: int) -> None:
    import uvicorn

    from services.common.clock import WallClock
    from services.common.db import create_engine, session_factory
    from services.incidents.api.app import create_app
    from services.incidents.api.settings import ApiSettings

    settings = ApiSettings(database_url=_db_url(), jwt_secret=SECRET)  # type: ignore[arg-type]
    app = create_app(settings, session_factory(create_engine(_db_url())), None, WallClock())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def load(base: str, ids: list[str], rate: float, seconds: float, concurrency: int) -> None:
    from services.incidents.api.auth import create_token

    token = create_token(SECRET, "bench", ["viewer"], now=datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(11)
    total = int(rate * seconds)
    lat: dict[str, list[float]] = {"list": [], "detail": []}
    errors = 0
    late = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as c:
        for _ in range(50):  # warm up connections and caches; sequential = unloaded latency
            await c.get(f"/api/v1/incidents/{rng.choice(ids)}")
        idle = []
        for _ in range(100):
            started = time.perf_counter()
            await c.get(f"/api/v1/incidents/{rng.choice(ids)}")
            idle.append(time.perf_counter() - started)
        q = statistics.quantiles(idle, n=100)
        print(f"  unloaded detail (sequential): p50={q[49] * 1000:.1f} ms  "
              f"p99={q[98] * 1000:.1f} ms")  # fmt: skip

        async def one(k: int, due: float) -> None:
            nonlocal errors, late
            if k % 2:
                kind, url = "detail", f"/api/v1/incidents/{rng.choice(ids)}"
            else:
                params = rng.choice(["", "?status=confirmed", f"?feeder=F{rng.randrange(250):03d}",
                                     "?area=rural&limit=100", "?limit=50"])  # fmt: skip
                kind, url = "list", "/api/v1/incidents" + params
            async with gate:
                started = time.perf_counter()
                if started - due > 0.05:
                    late += 1
                try:
                    r = await c.get(url)
                    ok = r.status_code == 200
                except httpx.TransportError:
                    ok = False  # counted, and its latency (up to the timeout) kept
                lat[kind].append(time.perf_counter() - started)
                if not ok:
                    errors += 1

        t0 = time.perf_counter()
        tasks = []
        for k in range(total):
            due = t0 + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    print(f"{total} requests in {elapsed:.1f} s ({total / elapsed:.0f} req/s), "
          f"errors {errors}, started >50 ms late {late}")  # fmt: skip
    for kind, values in lat.items():
        q = statistics.quantiles(values, n=100)
        print(f"  {kind:6s} n={len(values):5d} p50={q[49] * 1000:6.1f} ms  "
              f"p90={q[89] * 1000:6.1f} ms  p99={q[98] * 1000:6.1f} ms  "
              f"max={max(values) * 1000:6.1f} ms")  # fmt: skip
    every = lat["list"] + lat["detail"]
    q = statistics.quantiles(every, n=100)
    print(f"  all    p50={q[49] * 1000:.1f} ms  p99={q[98] * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return
    ids = asyncio.run(seed(args.incidents))
    print(f"seeded {len(ids)} open incidents; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(args.port)])
    try:
        base = f"http://127.0.0.1:{args.port}"
        deadline = time.monotonic() + 120  # a loaded machine starts slowly
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        asyncio.run(load(base, ids, args.rate, args.seconds, args.concurrency))
    finally:
        child.terminate()
        child.wait(10)


if __name__ == "__main__":
    main()
