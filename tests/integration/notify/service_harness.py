"""Harness for the notify service tests: a real HTTP SMS gateway and operators' webhook
receiver, a small topology, a lifecycle event feed and a driver on a virtual clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics import LIFECYCLE
from services.common.bus.base import OutMessage
from services.common.bus.memory import MemoryBus
from services.common.clock import VirtualClock
from services.common.db import session_factory
from services.common.topology.model import (
    Contacts,
    Customer,
    Device,
    Feeder,
    Topology,
    Transformer,
)
from services.notify.channels.sms_http import SmsHttpChannel
from services.notify.channels.webhook import WebhookChannel
from services.notify.entrypoints.service import NotifyService
from services.notify.outcomes import BeforeCommit
from services.notify.service_settings import NotifyServiceSettings

# 10:00 in Shanghai: outside everyone's default quiet hours (22:00-07:00)
T0 = datetime(2026, 7, 14, 2, 0, tzinfo=UTC)
SECRET = "operators-secret"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.loads(raw)
        with self.server.lock:
            if self.path.startswith("/hook"):
                self.server.hooks.append(body)
                status = 200
            else:
                self.server.received.append(body)
                script = self.server.script.get(body["to"])
                status = script.pop(0) if script else 200
        data = json.dumps({"id": f"p{len(self.server.received)}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    received: list[dict[str, Any]]
    hooks: list[dict[str, Any]]
    script: dict[str, list[int]]
    lock: threading.Lock


@dataclass
class SmsGateway:
    """A real HTTP server: POST / is the SMS gateway, POST /hook the operators' webhook.
    ``script[phone]`` lists the statuses to answer for that phone, in order (then 200)."""

    server: _Server
    thread: threading.Thread

    @classmethod
    def start(cls) -> SmsGateway:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.received, server.hooks, server.script = [], [], {}
        server.lock = threading.Lock()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return cls(server, thread)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def received(self) -> list[dict[str, Any]]:
        return self.server.received

    @property
    def hooks(self) -> list[dict[str, Any]]:
        return self.server.hooks

    def script(self, phone: str, statuses: Iterable[int]) -> None:
        self.server.script[phone] = list(statuses)

    def to(self, customer_id: str) -> list[str]:
        """Texts received for a customer (by their phone)."""
        return [r["text"] for r in self.received if r["to"] == phone(customer_id)]

    def references(self) -> list[str]:
        return [r["reference"] for r in self.received]


def phone(customer_id: str) -> str:
    return "+86138" + customer_id[1:].rjust(8, "0")


def topology(n: int = 6, *, critical: Iterable[str] = (), quiet: dict[str, str] | None = None,
             english: Iterable[str] = ()) -> Topology:  # fmt: skip
    """One feeder, one fuse, one transformer, customers C000001..n (all with SMS)."""
    crit, en, quiet = set(critical), set(english), quiet or {}
    customers = [
        Customer(
            f"C{i:06d}", f"M{i:06d}", "T0001", "residential", f"C{i:06d}" in crit, False,
            "en" if f"C{i:06d}" in en else "zh-CN", quiet.get(f"C{i:06d}"),
            Contacts(sms=phone(f"C{i:06d}")),
        )
        for i in range(1, n + 1)
    ]  # fmt: skip
    return Topology.build(
        [Feeder("F01", "Yunhe 10kV #1", "S1", "urban")],
        [Device("F01-BKR", "F01", None, "breaker"), Device("F01-FU7", "F01", "F01-BKR", "fuse")],
        [Transformer("T0001", "F01-FU7", 220, 1)],
        customers,
    )


@dataclass
class Feed:
    """Lifecycle events with consecutive seqs per incident, as incidents publishes them."""

    seqs: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    def event(self, incident_id: str, type_: str, minute: float, *, added: Iterable[Any] = (),
              restored: Iterable[Any] = (), **snapshot: Any) -> dict[str, Any]:  # fmt: skip
        seq = self.seqs.get(incident_id, 0) + 1
        self.seqs[incident_id] = seq
        snap = self.snapshots.setdefault(incident_id, {
            "id": incident_id, "kind": "outage", "status": "detected", "feeder_id": "F01",
            "device_id": "F01-FU7", "transformer_id": None, "customer_id": None,
            "area": "urban", "detected_at": at(0).isoformat(), "confirmed_at": None,
            "etr": None, "restored_at": None, "customers_affected": 0, "customers_out": 0,
            "cause": None, "parent_incident_id": None, "sla": {},
        })  # fmt: skip
        snap.update({k: v.isoformat() if isinstance(v, datetime) else v
                     for k, v in snapshot.items()})  # fmt: skip
        return {
            "event_id": f"{incident_id}:{seq}", "incident_id": incident_id, "seq": seq,
            "type": type_, "occurred_at": at(minute).isoformat(), "actor": "system",
            "incident": dict(snap), "customers_added": list(added),
            "customers_restored": list(restored),
        }  # fmt: skip


class Harness:
    """The notify service on a MemoryBus, a virtual clock and a real HTTP gateway."""

    def __init__(self, engine: AsyncEngine, gateway: SmsGateway, topo: Topology, *,
                 before_commit: BeforeCommit | None = None, operators: bool = False,
                 sole_writer: bool = False, **settings: Any) -> None:  # fmt: skip
        self.engine = engine
        self.gateway = gateway
        self.clock = VirtualClock(T0)
        self.bus = MemoryBus(clock=self.clock)
        self.sessions = session_factory(engine)
        self.feed = Feed()
        base: dict[str, Any] = {
            "database_url": str(engine.url), "notify_poll_timeout_s": 0.0,
            "sms_gateway_url": gateway.url, "notify_lease_s": 120.0,
            "channel_rates": {"sms": (1000.0, 1000.0)}, "survey_rate": 0.0,
            "notify_operators_webhook_url": f"{gateway.url}/hook" if operators else None,
        }  # fmt: skip
        self.settings = NotifyServiceSettings(**{**base, **settings})
        self.sms = SmsHttpChannel(gateway.url)
        self.hook = WebhookChannel(SECRET, self.clock)
        self.sole_writer = sole_writer
        self.service = self._service(topo, before_commit)

    def _service(self, topo: Topology, before_commit: BeforeCommit | None) -> NotifyService:
        return NotifyService(
            self.settings, self.bus, self.sessions, self.clock, topo, {"sms": self.sms},
            operators=self.hook, before_commit=before_commit, sole_writer=self.sole_writer,
        )  # fmt: skip

    async def restart(self, before_commit: BeforeCommit | None = None) -> NotifyService:
        """A new process on the same database and bus; the old one leaves the group
        without committing anything (what a killed process amounts to)."""
        await self.service.stop()
        self.service = self._service(self.service.topology.current, before_commit)
        await self.service.start()
        return self.service

    async def publish(self, *events: dict[str, Any]) -> None:
        producer = await self.bus.producer()
        await self.bus.create_topics([LIFECYCLE])
        await producer.send([
            OutMessage(LIFECYCLE, orjson.dumps(e), e["incident_id"].encode()) for e in events
        ])  # fmt: skip

    async def consume(self) -> int:
        total = 0
        while n := await self.service.run_once():
            total += n
        return total

    async def run_until(self, minute: float) -> None:
        """Consume, send and relay everything due up to ``at(minute)``, in time order."""
        target = at(minute)
        for _ in range(10_000):
            await self.consume()
            nxt = await self.service.run_due()
            await self.service.relay_once()
            if nxt is None or nxt > target:
                break
            await self.clock.advance_to(max(nxt, self.clock.now()))
        else:
            raise AssertionError("the service never settled")
        await self.clock.advance_to(target)
        await self.consume()
        await self.service.run_due()
        await self.service.relay_once()

    async def jobs(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT id, incident_id, customer_id, stage, revision, status, attempts, "
                "last_error FROM notify.jobs ORDER BY id"))  # fmt: skip
            return [dict(r._mapping) for r in rows]

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql))]

    async def scalar(self, sql: str) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()

    async def __aenter__(self) -> Harness:
        """The harness with its service started (closed on leaving)."""
        await self.service.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.service.stop()
        await self.sms.aclose()
        await self.hook.aclose()
        await self.bus.close()
