"""API latency benchmark: 5,000 open incidents on PostgreSQL, GET list and detail at a fixed
rate through a real uvicorn server.

Run: python bench/api_bench.py [--rate 200] [--seconds 20] [--incidents 5000]
Uses its own database ``outagedesk_i2_bench`` on OUTAGEDESK_TEST_DATABASE_URL's server
(default: the deploy/local PostgreSQL). The server runs in a child process (one uvicorn
worker) so the load generator does not share its event loop or its CPU accounting. Open-loop
load: request k is issued at t0 + k/rate whatever became of the earlier ones, and its latency
is measured from that scheduled time (a request waiting for one of the --concurrency
keep-alive connections is still counted from when it was due). Prints the sequential
(unloaded) latency, then p50/p90/p99/max per route under load, the server process's CPU per
request and the load average. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
import uvloop
from sqlalchemy.engine import make_url

# runnable as `python bench/api_bench.py` from anywhere (the editable install maps no `services`)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_URL = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"
DATABASE = "outagedesk_i2_bench"
SECRET = "bench-secret-0123456789abcdef0123456789"
WARM_S = 2.0  # the unmeasured run before the measured one
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
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        # vacuumed and analysed now, so autovacuum does not pick the fresh rows up (and take
        # a core) in the middle of the measured run
        await conn.execute("VACUUM ANALYZE incidents.incidents, incidents.timeline")
    finally:
        await conn.close()
    return ids


def serve(port: int) -> None:
    import uvicorn

    from services.common.clock import WallClock
    from services.common.db import create_engine, session_factory
    from services.incidents.api.app import create_app
    from services.incidents.api.heap import settle_after_startup
    from services.incidents.api.settings import ApiSettings

    settings = ApiSettings(database_url=_db_url(), jwt_secret=SECRET)
    app = create_app(settings, session_factory(create_engine(_db_url())), None, WallClock())
    # uvloop and httptools named, not "auto": a missing one fails here instead of silently
    # measuring the slower pure-Python loop or h11
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, http="httptools")  # fmt: skip
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        # uvicorn offers no event for it, only the flag
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        settle_after_startup()  # as `outagedesk serve incidents` does once started
        await task

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


class _Conn:
    """One keep-alive HTTP/1.1 connection: the bench's own minimal client, because httpx
    spends ~1 ms of CPU per request, which at 200 req/s on 2 cores is taken from the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, target: str, auth: bytes) -> tuple[int, int]:
        """The status and the body's length."""
        self.writer.write(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + auth)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status, length


class Client:
    """At most ``limit`` connections; a request waits for a free one (its wait counts)."""

    def __init__(self, host: str, port: int, token: str, limit: int) -> None:
        self._host, self._port, self._free = host, port, asyncio.Queue[_Conn]()
        self._auth = f"Authorization: Bearer {token}\r\n\r\n".encode()
        self._open, self._limit = 0, limit

    async def get(self, target: str) -> tuple[int, int]:
        if self._free.empty() and self._open < self._limit:
            self._open += 1
            try:
                conn = _Conn(*await asyncio.open_connection(self._host, self._port))
            except OSError:
                self._open -= 1
                raise
        else:
            conn = await self._free.get()
        try:
            answer = await asyncio.wait_for(conn.get(target, self._auth), 10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            self._open -= 1
            conn.writer.close()
            raise
        self._free.put_nowait(conn)
        return answer


def _quantiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100)
    return (f"p50={q[49] * 1000:6.1f} ms  p90={q[89] * 1000:6.1f} ms  "
            f"p99={q[98] * 1000:6.1f} ms  max={max(values) * 1000:6.1f} ms")  # fmt: skip


async def _open_loop(
    client: Client, requests: list[tuple[str, str]], rate: float
) -> tuple[dict[str, list[float]], int]:
    """Request k is issued at t0 + k/rate whatever happened to the earlier ones, and its
    latency runs from that scheduled time (waiting for a connection counts), so a stalled
    server cannot hide its queue (no coordinated omission). A request counts as an error
    unless it answers 200 with a non-empty body. Returns latencies by kind and the errors."""
    lat: dict[str, list[float]] = {"list": [], "detail": []}
    errors = 0

    async def one(kind: str, url: str, due: float) -> None:
        nonlocal errors
        try:
            status, length = await client.get(url)
            ok = status == 200 and length > 0
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            ok = False  # counted, and its latency (up to the timeout) kept
        lat[kind].append(time.perf_counter() - due)
        if not ok:
            errors += 1

    # only the unfinished are held: 4,000 done tasks kept to the end would grow this
    # process's heap and trigger the collector's full passes inside the measurement
    running: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.1
    for k, (kind, url) in enumerate(requests):
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(kind, url, due))
        running.add(task)
        task.add_done_callback(running.discard)
    while running:
        await asyncio.gather(*running)
    return lat, errors


async def load(port: int, ids: list[str], rate: float, seconds: float, concurrency: int) -> None:
    """Unloaded (sequential) latency, then a short unmeasured run at ``rate`` (the server's
    database pool opens the connections the load needs and prepares each statement on
    them, as any server running a while has), then the measured open-loop run."""
    from services.incidents.api.auth import create_token

    token = create_token(SECRET, "bench", ["viewer"], now=datetime.now(UTC))
    client = Client("127.0.0.1", port, token, concurrency)
    rng = random.Random(11)
    for _ in range(50):  # warm up connections and caches
        await client.get(f"/api/v1/incidents/{rng.choice(ids)}")
    idle: dict[str, list[float]] = {"list": [], "detail": []}
    for k in range(200):  # one at a time: the unloaded latency
        kind, url = _request(k, rng, ids)
        started = time.perf_counter()
        await client.get(url)
        idle[kind].append(time.perf_counter() - started)
    for kind, values in idle.items():
        print(f"  unloaded {kind:6s} (sequential) {_quantiles(values)}")
    warm_rng = random.Random(13)  # its own, so the measured requests stay the same
    _, warm_errors = await _open_loop(
        client, [_request(k, warm_rng, ids) for k in range(int(rate * WARM_S))], rate
    )
    total = int(rate * seconds)
    requests = [_request(k, rng, ids) for k in range(total)]
    # the load generator's own collector pauses would delay its requests and be charged to
    # the server: none during the measured run (it holds only the running requests' objects)
    gc.collect()
    gc.disable()
    load_before = os.getloadavg()[0]
    cpu_before, pg_before, own_before = _server_cpu(), await _postgres_cpu(), time.process_time()
    started = time.perf_counter()
    try:
        lat, errors = await _open_loop(client, requests, rate)
    finally:
        gc.enable()
    elapsed = time.perf_counter() - started
    cpu = _server_cpu() - cpu_before
    pg_cpu = await _postgres_cpu() - pg_before
    own = time.process_time() - own_before
    print(f"{total} requests scheduled at {rate:.0f}/s, done in {elapsed:.1f} s "
          f"({total / elapsed:.0f} req/s), errors {errors + warm_errors}; CPU per request: "
          f"server {cpu / total * 1000:.2f} ms, PostgreSQL {pg_cpu / total * 1000:.2f} ms, "
          f"client {own / total * 1000:.2f} ms; load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    for kind, values in lat.items():
        print(f"  {kind:6s} n={len(values):5d} {_quantiles(values)}")
    print(f"  all    n={total:5d} {_quantiles(lat['list'] + lat['detail'])}")


_SERVER_PID = 0


def _server_cpu() -> float:
    """CPU seconds the server process has used (Linux /proc; 0 elsewhere)."""
    return _process_cpu(_SERVER_PID)


def _process_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _postgres_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL backends serving the bench database (they
    run on this machine when the server is local; 0 where /proc cannot see them)."""
    url = make_url(_db_url()).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        pids = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", DATABASE)
    finally:
        await conn.close()
    return sum(_process_cpu(r["pid"]) for r in pids)


def _request(k: int, rng: random.Random, ids: list[str]) -> tuple[str, str]:
    """Half detail views, half list pages with the filters an operator's screen uses."""
    if k % 2:
        return "detail", f"/api/v1/incidents/{rng.choice(ids)}"
    params = rng.choice(["", "?status=confirmed", f"?feeder=F{rng.randrange(250):03d}",
                         "?area=rural&limit=100", "?limit=50"])  # fmt: skip
    return "list", "/api/v1/incidents" + params


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
        global _SERVER_PID
        _SERVER_PID = child.pid
        # the load generator on uvloop too: its streams cost less CPU, taken from the server
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(load(args.port, ids, args.rate, args.seconds, args.concurrency))
    finally:
        child.terminate()
        child.wait(10)


if __name__ == "__main__":
    main()
