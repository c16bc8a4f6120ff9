"""CPU per signal of the incidents service on its database path (run on demand).

    python bench/bench_incidents_service.py [--customers 20000] [--database-url URL]
        [--batch 2000] [--profile out.prof] [--name bench_svc]

The storm of ``bench/storm.py`` (same county, same scenario lines, lockout share 0.6),
normalised by ingest's own ``process()`` in this process, then put on a MemoryBus and
applied by one ``IncidentsService`` (consumer batches, outbox relay and timers, everything
but Kafka) against a fresh PostgreSQL database ``outagedesk_<name>`` (or SQLite with a
``sqlite+aiosqlite://`` URL). Virtual clock: the signals are applied at the burst's start
(as storm.py delivers them all at once), then the clock steps a second at a time through
the rule windows firing timers. Prints this process's CPU seconds per phase and ms CPU per
signal (the database server's CPU is not included; its wall time is). ``--profile``
writes a cProfile of the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "chaos")]  # runnable without install

from replay import encode  # noqa: E402
from storm_scenario import Windows, compressed_policy, county, storm_lines  # noqa: E402

DEFAULT_SERVER = "postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:55432/outagedesk"
WINDOWS = Windows(sustained_s=60, nested_check_s=40)


def signals_of(lines: list[dict[str, Any]], topology: Any) -> list[tuple[bytes, bytes]]:
    """(key, value) of the ``grid.signals.v1`` messages ingest makes of ``lines``."""
    from services.ingest.domain.dedup import DedupWindow
    from services.ingest.domain.enrichment import Locations
    from services.ingest.domain.normalise import process
    from services.ingest.domain.results import Signal

    dedup, locations = DedupWindow(), Locations(topology)
    out: list[tuple[bytes, bytes]] = []
    for n, line in enumerate(lines):
        topic, value, key = encode(line)
        outcome = process(value, topic, key, 0, n, datetime.fromisoformat(line["at"]),
                          locations, dedup)  # fmt: skip
        dedup.commit()
        if isinstance(outcome, Signal):
            out.append((outcome.key, outcome.to_json()))
    return out


async def fresh(url: str, name: str, topology_file: Path) -> str:
    if url.startswith("sqlite"):
        from services.common.migrate import migrate
        from services.common.topology.loading import load_file_into_database

        path = Path(tempfile.mkdtemp(prefix="bench-svc-")) / "bench.db"
        target = f"sqlite+aiosqlite:///{path}"
        await migrate(target)
        await load_file_into_database(target, topology_file)
        return target
    from stack import fresh_database

    return await fresh_database(url, f"outagedesk_{name}", topology_file)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from schemas.topics import SIGNALS
    from services.common.bus.base import OutMessage
    from services.common.bus.memory import MemoryBus
    from services.common.clock import VirtualClock
    from services.common.db import create_engine, session_factory
    from services.common.topology.loader import build_topology
    from services.incidents.entrypoints.service import IncidentsService
    from services.incidents.settings import IncidentsSettings

    work = Path(tempfile.mkdtemp(prefix="bench-svc-"))
    data = county(args.customers, 11)
    (work / "topology.json").write_bytes(orjson.dumps(data))
    (work / "policy.yaml").write_text(compressed_policy(WINDOWS))
    url = await fresh(args.database_url, args.name, work / "topology.json")
    base = datetime(2026, 7, 14, 8, 0, tzinfo=UTC)
    lines = storm_lines(data, base, WINDOWS, lockout_share=0.6)
    signals = signals_of(lines, build_topology(data))
    settings = IncidentsSettings(
        database_url=url, policy_file=work / "policy.yaml", incidents_poll_timeout_s=0,
        consumer_batch_size=args.batch, incidents_timer_max_hold_s=0,
    )  # fmt: skip
    engine = create_engine(url)
    timings = statement_timings(engine) if args.statements else None
    clock = VirtualClock(base)
    bus = MemoryBus(clock=clock, default_partitions=6)
    svc = IncidentsService(settings, bus, session_factory(engine), clock)
    await svc.start()
    producer = await bus.producer()
    await producer.send([OutMessage(SIGNALS, v, k) for k, v in signals])
    prof = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits
    out: dict[str, Any] = {"customers": len(data["customers"]), "signals": len(signals)}
    try:
        if prof is not None:
            prof.enable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while await svc.run_once() > 0:
            pass
        cpu1, wall1 = time.process_time(), time.perf_counter()
        published = 0
        while (n := await svc.relay_once()) > 0:
            published += n
        cpu2, wall2 = time.process_time(), time.perf_counter()
        end = base + timedelta(seconds=WINDOWS.span_s + WINDOWS.nested_check_s + 80)
        while clock.now() < end:
            await clock.advance_to(clock.now() + timedelta(seconds=1))
            await svc.run_due()
            while (n := await svc.relay_once()) > 0:
                published += n
        cpu3, wall3 = time.process_time(), time.perf_counter()
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
    finally:
        await svc.stop()
        await bus.close()
        await engine.dispose()
    n = len(signals)
    out |= {
        "apply_cpu_s": round(cpu1 - cpu0, 2), "apply_wall_s": round(wall1 - wall0, 2),
        "apply_ms_cpu_per_signal": round(1000 * (cpu1 - cpu0) / n, 3),
        "relay_cpu_s": round(cpu2 - cpu1, 2), "relay_wall_s": round(wall2 - wall1, 2),
        "timers_cpu_s": round(cpu3 - cpu2, 2), "timers_wall_s": round(wall3 - wall2, 2),
        "total_ms_cpu_per_signal": round(1000 * (cpu3 - cpu0) / n, 3),
        "signals_per_cpu_s": round(n / (cpu3 - cpu0)),
        "published": published, "load_average": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    if timings is not None:
        out["statements"] = sorted(timings.items(), key=lambda kv: -kv[1][0])[:25]
        out["statement_wall_s"] = round(sum(s for s, _ in timings.values()), 2)
    return out


def statement_timings(engine: Any) -> dict[str, list[float]]:
    """Wall time and count per statement text (first 110 characters), client side."""
    from sqlalchemy import event

    out: dict[str, list[float]] = {}

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = " ".join(statement.split())[:110]
        entry = out.setdefault(key, [0.0, 0])
        entry[0] += time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        entry[1] += 1

    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--database-url", default=DEFAULT_SERVER)
    parser.add_argument("--batch", type=int, default=2000,
                        help="consumer batch size (the service default)")
    parser.add_argument("--profile", default=None, help="write a cProfile of the run here")
    parser.add_argument("--statements", action="store_true",
                        help="time each SQL statement (client side) and list the top 25")
    parser.add_argument("--name", default="bench_svc", help="database outagedesk_<name>")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    timings = result.pop("statements", None)
    for k, v in result.items():
        print(f"{k:<26} {v}")
    if timings:
        print(f"{'statement wall s':>16} {'calls':>7}  statement")
        for text, (secs, calls) in timings:
            print(f"{secs:>16.2f} {calls:>7}  {text}")


if __name__ == "__main__":
    main()
