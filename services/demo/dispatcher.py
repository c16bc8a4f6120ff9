"""The demo's automatic dispatcher: acts on incidents the way a county's operators would.

It watches lifecycle events and plans operator actions in (virtual) time: acknowledge a
few minutes after an outage is opened, assign a crew, report the crew on site after a
travel time that depends on the area (storm roads make some crews late), set an ETR on
arrival and sometimes revise it, and close a restored incident with a cause code. Pure:
given the same events it plans the same actions (randomness is seeded per incident).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any

_TRAVEL_MIN = {"urban": (20, 55), "rural": (45, 110), "remote": (70, 150)}
_REPAIR_MIN = {"urban": (60, 200), "rural": (90, 260), "remote": (120, 420)}
_CAUSES = ("typhoon_wind", "tree_contact", "flooded_equipment", "lightning", "equipment_failure")
_OPEN_STATES = {"detected", "confirmed", "dispatched", "on_site"}


@dataclass(frozen=True, order=True, slots=True)
class OperatorAction:
    at: datetime
    order: int
    incident_id: str = field(compare=False)
    action: str = field(compare=False)  # acknowledge | crew | arrived | etr | close
    params: dict[str, Any] = field(compare=False, default_factory=dict)


class Dispatcher:
    """Plans operator actions from lifecycle events; ``due(now)`` pops what is due."""

    actor = "demo-dispatcher"

    def __init__(self, seed: int = 7) -> None:
        self._seed = seed
        self._queue: list[OperatorAction] = []
        self._order = count()
        self._crews = count(1)
        self._handled: set[tuple[str, str]] = set()

    def _rng(self, incident_id: str) -> random.Random:
        digest = hashlib.sha256(f"{self._seed}:{incident_id}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _plan(self, at: datetime, incident_id: str, action: str, **params: Any) -> None:
        if (incident_id, action) in self._handled and action != "etr":
            return
        self._handled.add((incident_id, action))
        heapq.heappush(self._queue, OperatorAction(at, next(self._order), incident_id, action,
                                                   params))

    def observe(self, event: dict[str, Any]) -> None:
        """Plan follow-up actions for one lifecycle event (``incidents.lifecycle.v1``)."""
        snap = event["incident"]
        iid, etype = snap["id"], event["type"]
        at = datetime.fromisoformat(event["occurred_at"])
        rng = self._rng(iid)
        if snap["kind"] == "voltage":
            if etype == "voltage_opened":
                self._plan(at + timedelta(minutes=rng.uniform(10, 30)), iid, "acknowledge")
            elif etype == "voltage_resolved":
                self._plan(at + timedelta(minutes=rng.uniform(30, 90)), iid, "close",
                           cause="transformer_tap_adjusted")
            return
        if snap["kind"] != "outage":
            return
        area = snap.get("area") or "rural"
        if etype in ("opened", "confirmed") and snap["status"] in ("detected", "confirmed"):
            self._plan(at + timedelta(minutes=rng.uniform(1.5, 6)), iid, "acknowledge")
            crew_at = at + timedelta(minutes=rng.uniform(6, 20))
            self._plan(crew_at, iid, "crew", crew_id=f"CREW-{next(self._crews):03d}")
        elif etype == "crew_assigned":
            lo, hi = _TRAVEL_MIN[area]
            self._plan(at + timedelta(minutes=rng.uniform(lo, hi)), iid, "arrived")
        elif etype == "crew_arrived":
            lo, hi = _REPAIR_MIN[area]
            etr = at + timedelta(minutes=rng.uniform(lo, hi))
            self._plan(at + timedelta(minutes=rng.uniform(5, 15)), iid, "etr",
                       etr=etr.isoformat(), reason="crew assessment")
            if rng.random() < 0.35:  # the damage is worse than it looked
                slip = etr + timedelta(minutes=rng.uniform(40, 120))
                self._plan(at + timedelta(minutes=rng.uniform(40, 70)), iid, "etr",
                           etr=slip.isoformat(), reason="more damage found")
        elif etype == "restored":
            self._plan(at + timedelta(minutes=rng.uniform(20, 60)), iid, "close",
                       cause=rng.choice(_CAUSES))

    def next_due(self) -> datetime | None:
        return self._queue[0].at if self._queue else None

    def due(self, now: datetime) -> list[OperatorAction]:
        """Actions due at ``now``, in time order; the caller applies them and ignores the
        ones the incident's state no longer allows (it may have been merged or restored)."""
        out: list[OperatorAction] = []
        while self._queue and self._queue[0].at <= now:
            out.append(heapq.heappop(self._queue))
        return out


def still_open(snapshot: dict[str, Any]) -> bool:
    return str(snapshot.get("status")) in _OPEN_STATES
