"""Run the real stack as separate processes: private Kafka and PostgreSQL servers started
with deploy/local's scripts, ``outagedesk serve ingest|incidents|notify`` subprocesses, a
local SMS gateway that counts what it receives, and the queries that compare two runs.

Shared by the chaos and scale-out tests (tests/chaos/) and by ``bench/storm.py``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
STATE_ROOT = Path(os.environ.get("OUTAGEDESK_CHAOS_DIR", "/var/tmp/outagedesk-chaos"))
TOPIC_PARTITIONS = 6


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _script(name: str, command: str, env: dict[str, str]) -> None:
    proc = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        ["bash", str(LOCAL / name), command],  # noqa: S607
        env={**os.environ, **env}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {command} failed:\n{proc.stdout}\n{proc.stderr}")


@dataclass
class PrivateKafka:
    """A broker of our own (deploy/local/kafka.sh with its own ports and directory)."""

    name: str
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            "OUTAGEDESK_LOCAL_DIR": str(self.state_dir),
            "OUTAGEDESK_KAFKA_PORT": str(self.port),
            "OUTAGEDESK_KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }

    def start(self, *, fresh: bool = False) -> None:
        """Start (``fresh``: on empty storage, so no topic of an earlier run remains)."""
        if fresh:
            self.stop()
            shutil.rmtree(self.state_dir / "kafka", ignore_errors=True)
        _script("kafka.sh", "start", self._env())

    def stop(self) -> None:
        _script("kafka.sh", "stop", self._env())

    def restart(self) -> None:
        _script("kafka.sh", "restart", self._env())


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own (deploy/local/postgres.sh, own port and directory;
    the port is fixed per directory because initdb writes it into the configuration)."""

    name: str
    port: int

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def server_url(self) -> str:
        return f"postgresql+asyncpg://outagedesk:outagedesk@127.0.0.1:{self.port}/outagedesk"

    def _env(self) -> dict[str, str]:
        return {"OUTAGEDESK_LOCAL_DIR": str(self.state_dir), "OUTAGEDESK_PG_PORT": str(self.port)}

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _script("postgres.sh", "start", self._env())

    def stop(self) -> None:
        _script("postgres.sh", "stop", self._env())

    def restart(self) -> None:
        _script("postgres.sh", "restart", self._env())


async def fresh_database(server_url: str, name: str, topology_file: Path) -> str:
    """Database ``name`` on the server of ``server_url``, dropped and created anew, every
    schema migrated and ``topology_file`` loaded; its URL."""
    from services.common.migrate import migrate
    from services.common.topology.loading import load_file_into_database

    url = make_url(server_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    target = url.set(database=name).render_as_string(hide_password=False)
    await migrate(target)
    await load_file_into_database(target, topology_file)
    return target


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    from services.common.bus.kafka import KafkaBus

    bus = KafkaBus(bootstrap)
    try:
        await bus.create_topics(list(names), partitions=partitions)
    finally:
        await bus.close()


def all_topics(ingest_prefix: str = "") -> list[str]:
    """Every DESIGN topic, plus ingest's under ``ingest_prefix`` when one is given."""
    from schemas import topics as t

    ingest = [t.METER_EVENTS, t.DEVICE_EVENTS, t.CUSTOMER_REPORTS, t.SIGNALS, t.DEAD_LETTER]
    return sorted({*(ingest_prefix + n for n in ingest), *t.TOPICS})


# --- service processes -------------------------------------------------------------------
CLI = [sys.executable, "-c", "from services.cli import main; main()"]


@dataclass
class Usage:
    """Peak resident memory and CPU seconds of one process (sampled from /proc)."""

    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0


class ServiceProcess:
    """One ``outagedesk serve <name>`` subprocess that can be killed and restarted."""

    def __init__(self, label: str, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.label = label
        self.argv = list(argv)
        self.env = env
        self.log_path = log
        self._log: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills: list[float] = []  # time.time() of every SIGKILL
        self.usage = Usage()
        self._cpu_before = 0.0  # CPU of earlier incarnations

    def start(self) -> None:
        self._log = self._log or self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [*CLI, *self.argv], env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=ROOT,
        )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sample(self) -> None:
        """Update peak RSS and CPU from /proc (call it now and then while it runs)."""
        if not self.alive:
            return
        assert self.proc is not None
        pid = self.proc.pid
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.usage.peak_rss_mb = max(self.usage.peak_rss_mb, int(line.split()[1]) / 1024)
        ticks = os.sysconf("SC_CLK_TCK")
        self.usage.cpu_s = self._cpu_before + (int(stat[11]) + int(stat[12])) / ticks

    def kill9(self) -> None:
        assert self.proc is not None, f"{self.label} never started"
        assert self.alive, f"{self.label} is not running"
        self.sample()
        self._cpu_before = self.usage.cpu_s
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.kills.append(time.time())

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.alive:
            self.sample()
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return None
        return self.proc.returncode

    def close(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class StackConfig:
    """What the three services of one run share."""

    name: str
    database_url: str
    bootstrap: str
    policy_file: Path
    gateway_url: str
    workdir: Path
    ingest_prefix: str = ""
    incidents_prefix: str = ""
    incidents_consumers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)


class Stack:
    """ingest, N incidents consumers and notify as separate processes."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        base = {
            **os.environ,
            "OUTAGEDESK_DATABASE_URL": cfg.database_url,
            "OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS": cfg.bootstrap,
            "OUTAGEDESK_POLICY_FILE": str(cfg.policy_file),
            "OUTAGEDESK_LOG_FORMAT": "json",
            "OUTAGEDESK_LOG_LEVEL": "INFO",
            "OUTAGEDESK_INGEST_TOPIC_PREFIX": cfg.ingest_prefix,
            "OUTAGEDESK_INCIDENTS_TOPIC_PREFIX": cfg.incidents_prefix,
            **cfg.extra_env,
        }
        w = cfg.workdir
        w.mkdir(parents=True, exist_ok=True)
        self.ingest = ServiceProcess(
            f"{cfg.name}-ingest", ["serve", "ingest"],
            {**base, "OUTAGEDESK_INGEST_METRICS_PORT": str(free_port())}, w / "ingest.log",
        )  # fmt: skip
        self.incidents = [
            ServiceProcess(f"{cfg.name}-incidents{i}", ["serve", "incidents", "--no-api"], base,
                           w / f"incidents{i}.log")  # fmt: skip
            for i in range(cfg.incidents_consumers)
        ]
        self.notify = ServiceProcess(
            f"{cfg.name}-notify", ["serve", "notify"],
            {**base, "OUTAGEDESK_NOTIFY_PORT": str(free_port()),
             "OUTAGEDESK_SMS_GATEWAY_URL": cfg.gateway_url,
             "OUTAGEDESK_NOTIFY_LEASE_S": "10", "OUTAGEDESK_NOTIFY_SINGLE_REPLICA": "true"},
            w / "notify.log",
        )  # fmt: skip

    @property
    def processes(self) -> list[ServiceProcess]:
        return [self.ingest, *self.incidents, self.notify]

    def start(self) -> None:
        for p in self.processes:
            p.start()

    def sample(self) -> None:
        for p in self.processes:
            p.sample()

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process; label → exit status."""
        return {p.label: p.terminate() for p in self.processes}

    def close(self) -> None:
        for p in self.processes:
            p.close()


# --- the SMS gateway ---------------------------------------------------------------------
class Gateway:
    """tests/chaos/gateway.py in a subprocess: answers 200 and records each reference."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/sms"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, str(Path(__file__).with_name("gateway.py")), str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    async def wait_ready(self, within_s: float = 30.0) -> None:
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    (await client.get(self.url)).raise_for_status()
                    return
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

    async def received(self) -> dict[str, list[float]]:
        """reference → arrival times (time.time())."""
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.get(self.url, params={"detail": "1"})
            resp.raise_for_status()
            refs: dict[str, list[float]] = resp.json()["refs"]
            return refs

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self._log.close()


# --- what a run produced -----------------------------------------------------------------
async def fetch(url: str, query: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def count(url: str, table: str) -> int:
    rows = await fetch(url, f"SELECT count(*) FROM {table}")  # noqa: S608 - our own names
    return int(rows[0][0])


OUTCOME_QUERIES = {
    "incidents": """SELECT id, kind, status, feeder_id, device_id, transformer_id, customer_id,
        parent_incident_id, merged_into, detected_at, confirmed_at, restored_at,
        customers_affected, customers_out, seq FROM incidents.incidents ORDER BY id""",
    "interruptions": """SELECT incident_id, customer_id, start, start_source, "end",
        end_source, unverified, momentary FROM incidents.interruptions
        ORDER BY incident_id, customer_id""",
    "incident_customers": """SELECT incident_id, customer_id FROM incidents.incident_customers
        ORDER BY 1, 2""",
    "lifecycle_seqs": """SELECT aggregate_id, seq, convert_from(payload, 'UTF8')::jsonb->>'type'
        FROM incidents.outbox WHERE topic LIKE '%incidents.lifecycle.v1' ORDER BY 1, 2""",
    # Jobs that were never cancelled must agree. Cancelled ones may not: notify reads the
    # lifecycle partitions in another order after a kill, and an incident merged into
    # another is linked to it only once its ``merged`` event is read, so a customer can get
    # an outage_detected job in both incidents (cancelled when due; see the report).
    # Jobs by the merge family's surviving incident: a customer moved by a merge has a
    # notice queued on each incident, and which of them is sent (the other is cancelled as
    # already told) depends on whether notify had read the merge when the first fell due.
    "notify_jobs": """WITH RECURSIVE up(id, root) AS (
            SELECT id, id FROM incidents.incidents WHERE merged_into IS NULL
            UNION ALL
            SELECT i.id, up.root FROM incidents.incidents i JOIN up ON i.merged_into = up.id)
        SELECT coalesce(up.root, j.incident_id), j.customer_id, j.stage, j.revision, j.status,
               j.channel
        FROM notify.jobs j LEFT JOIN up ON up.id = j.incident_id
        WHERE j.status <> 'cancelled' ORDER BY 1, 2, 3, 4""",
    "dead_letters": """SELECT topic, error_code, key, value FROM ingest.dead_letters
        ORDER BY 1, 2, 3, 4""",
    "processed_signals": "SELECT signal_id FROM incidents.processed_signals ORDER BY 1",
}


async def merge_roots(url: str) -> dict[str, str]:
    """incident id → the surviving incident of its merge family (itself when not merged)."""
    rows = await fetch(url, """WITH RECURSIVE up(id, root) AS (
            SELECT id, id FROM incidents.incidents WHERE merged_into IS NULL
            UNION ALL
            SELECT i.id, up.root FROM incidents.incidents i JOIN up ON i.merged_into = up.id)
        SELECT id, root FROM up""")
    return {r[0]: r[1] for r in rows}


async def outcome(url: str, prefix: str = "") -> dict[str, list[tuple[Any, ...]]]:
    """The rows two runs of the same scenario must agree on (topic prefixes stripped)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name, query in OUTCOME_QUERIES.items():
        rows = await fetch(url, query)
        if prefix:
            rows = [tuple(v.removeprefix(prefix) if isinstance(v, str) else v for v in r)
                    for r in rows]  # fmt: skip
        # one order for both runs (SQL's ORDER BY on one side and repr on the other put
        # seq 10 before seq 2 on one side only)
        rows.sort(key=repr)
        out[name] = rows
    return out
