"""A test driver around the Correlator that remembers every incident it ever emitted about."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.common.topology.model import Topology
from services.incidents.domain.correlation import Correlator
from services.incidents.domain.meter_state import CorrelatorState, SignalIn
from services.incidents.domain.model import Event, Incident


class Harness:
    def __init__(self, topology: Topology, state: CorrelatorState | None = None) -> None:
        self.corr = Correlator(topology, state=state)
        self.events: list[Event] = []
        self.seen: dict[str, Incident] = {}

    def _keep(self, events: list[Event]) -> list[Event]:
        for e in events:
            inc = self.corr.s.incidents.get(e.incident_id)
            if inc is not None:
                self.seen[inc.id] = inc
        self.events.extend(events)
        return events

    def feed(self, signals: Iterable[SignalIn]) -> list[Event]:
        out: list[Event] = []
        for s in signals:
            out += self._keep(self.corr.apply(s))
        return out

    def tick(self, now: datetime) -> list[Event]:
        return self._keep(self.corr.run_due(now).events)

    def live(self) -> list[Incident]:
        """Incidents not merged away, in creation order."""
        return [i for i in self.seen.values() if i.status != "merged"]

    def only(self) -> Incident:
        live = self.live()
        assert len(live) == 1, [(i.id, i.status) for i in live]
        return live[0]

    def types(self, incident_id: str) -> list[str]:
        return [e.type for e in self.events if e.incident_id == incident_id]
