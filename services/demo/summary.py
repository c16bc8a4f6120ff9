"""The summary the demo prints at the end: what the run did, read back from the database."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.policy import load_policy
from services.incidents import orm as incidents_orm
from services.incidents.report_data import build_report
from services.ingest.orm import dead_letters


@dataclass(slots=True)
class DemoSummary:
    start: datetime
    end: datetime
    lines: int
    seconds: float
    incidents: dict[str, dict[str, int]] = field(default_factory=dict)  # kind → status → n
    customers_interrupted: int = 0  # sustained, unplanned
    customers_momentary: int = 0
    messages: dict[str, int] = field(default_factory=dict)  # stage → n
    duplicate_messages: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)  # code → n
    sla_met_pct: float | None = None  # share of customers restored within commitment
    sla_targets: dict[str, float | None] = field(default_factory=dict)
    saifi: float = 0.0
    saidi: float = 0.0
    maifi: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "lines": self.lines, "seconds": round(self.seconds, 1),
            "incidents": self.incidents, "customers_interrupted": self.customers_interrupted,
            "customers_momentary": self.customers_momentary, "messages": self.messages,
            "duplicate_messages": self.duplicate_messages, "dead_letters": self.dead_letters,
            "sla_met_pct": self.sla_met_pct, "sla_targets": self.sla_targets,
            "saifi": self.saifi, "saidi": self.saidi, "maifi": self.maifi,
        }  # fmt: skip


async def collect_summary(
    sessions: async_sessionmaker[AsyncSession], start: datetime, end: datetime,
    messages_file: Path, seconds: float, lines: int,
) -> DemoSummary:
    """Read the run's outcome from the database and the messages file."""
    summary = DemoSummary(start=start, end=end, lines=lines, seconds=seconds)
    inc, intr = incidents_orm.incidents, incidents_orm.interruptions
    async with sessions() as session:
        rows = await session.execute(
            sa.select(inc.c.kind, inc.c.status, sa.func.count()).group_by(inc.c.kind,
                                                                          inc.c.status))
        for kind, status, n in rows:
            summary.incidents.setdefault(kind, {})[status] = n
        summary.customers_interrupted = await _count_customers(session, intr, momentary=False)
        summary.customers_momentary = await _count_customers(session, intr, momentary=True)
        codes = await session.execute(
            sa.select(dead_letters.c.error_code, sa.func.count()).group_by(
                dead_letters.c.error_code))
        summary.dead_letters = {code: n for code, n in codes}
        policy = load_policy(None)
        reliability = await build_report(session, "reliability", start, end, "all", policy, end)
        sla = await build_report(session, "sla", start, end, "all", policy, end)
    group = reliability["groups"][0] if reliability["groups"] else {}
    summary.saifi = float(group.get("saifi", 0.0))
    summary.saidi = float(group.get("saidi", 0.0))
    summary.maifi = float(group.get("maifi", 0.0))
    summary.sla_met_pct = sla["customers"].get("pct")
    summary.sla_targets = {t["target"]: t["met_pct"] for t in sla["targets"]}
    summary.messages, summary.duplicate_messages = _messages(messages_file)
    return summary


async def _count_customers(session: AsyncSession, intr: sa.Table, *, momentary: bool) -> int:
    query = sa.select(sa.func.count(sa.distinct(intr.c.customer_id))).where(
        intr.c.momentary.is_(momentary), intr.c.planned.is_(False))
    return int((await session.execute(query)).scalar_one())


def _messages(path: Path) -> tuple[dict[str, int], int]:
    """Messages per stage, and how many repeat an earlier (customer, incident, stage)."""
    if not path.exists():
        return {}, 0
    stages: Counter[str] = Counter()
    seen: Counter[tuple[str, str, str]] = Counter()
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                msg = orjson.loads(line)
                stages[msg["stage"]] += 1
                seen[(msg["customer_id"], msg["incident_id"], msg["stage"])] += 1
    # etr_changed may legitimately repeat (each move is a new revision); the rest may not.
    dups = sum(n - 1 for (_, _, stage), n in seen.items() if n > 1 and stage != "etr_changed")
    return dict(sorted(stages.items())), dups


def print_summary(s: DemoSummary, out: TextIO) -> None:
    """The human-readable summary."""
    w = out.write
    w(f"\nOutageDesk demo — {s.start.isoformat()} → {s.end.isoformat()}\n")
    w(f"  replayed {s.lines} messages in {s.seconds:.1f} s\n\n")
    w("  incidents\n")
    for kind, by_status in sorted(s.incidents.items()):
        states = ", ".join(f"{status} {n}" for status, n in sorted(by_status.items()))
        w(f"    {kind:<8} {sum(by_status.values()):>5}  ({states})\n")
    w(f"\n  customers interrupted (sustained) {s.customers_interrupted}\n")
    w(f"  customers with a momentary       {s.customers_momentary}\n\n")
    w(f"  messages sent {sum(s.messages.values())}"
      f" (duplicates {s.duplicate_messages})\n")
    for stage, n in s.messages.items():
        w(f"    {stage:<22} {n:>6}\n")
    w(f"\n  dead letters {sum(s.dead_letters.values())}: "
      + ", ".join(f"{c} {n}" for c, n in sorted(s.dead_letters.items())) + "\n")
    pct = "n/a" if s.sla_met_pct is None else f"{s.sla_met_pct:.1f} %"
    w(f"\n  SLA: customers restored within commitment {pct}\n")
    for target, met in s.sla_targets.items():
        w(f"    {target:<22} {'n/a' if met is None else f'{met:.1f} % met'}\n")
    w(f"\n  SAIFI {s.saifi:.4f}   SAIDI {s.saidi:.2f} min   MAIFI {s.maifi:.4f}\n")
