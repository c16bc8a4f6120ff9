"""The per-process cache of correlator state, kept coherent with PostgreSQL per feeder.

One :class:`TrackingCorrelator` holds every feeder this process has used. A writer (a
consumer batch, a timer run, an operator action) opens a transaction, calls
:meth:`FeederStateCache.acquire` for the feeders it touches — each feeder's
``feeder_versions`` row is locked and, when its writer token differs from the one the cache
last saw, the feeder is evicted and reloaded from the database — mutates the correlator,
and calls :meth:`FeederStateCache.save`, which writes the dirty rows and bumps the touched
feeders, all in the one transaction (DESIGN sections 12 and 13). A transaction that rolls
back leaves the cache holding a token the database never got, so the next writer reloads.

Feeders are loaded lazily on first use, so a partition assignment needs no feeder mapping;
on revocation the feeders last seen on the revoked partitions are evicted.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology.model import Topology
from services.incidents.domain import lifecycle
from services.incidents.domain.correlation import Correlator, point_of
from services.incidents.domain.model import Incident
from services.incidents.domain.rules import CorrelationRules
from services.incidents.state_store import (
    FeederRows,
    IncidentMeta,
    LoadedFeeder,
    bump_feeder,
    delete_interruptions,
    gone_interruptions,
    load_feeder,
    lock_feeder,
    save_customers,
    save_devices,
    save_feeder_rows,
    save_incident,
)


class TrackingCorrelator(Correlator):
    """A Correlator that also remembers the incident *objects* it touched.

    ``take_dirty`` gives ids only, and a finished incident is dropped from the state as soon
    as it is done, so the saver needs the objects themselves to write their final rows.
    """

    def __init__(
        self, topology: Topology, rules: CorrelationRules | None = None, actor: str = "correlator"
    ) -> None:
        super().__init__(topology, rules, None, actor)
        self.touched_incidents: dict[str, Incident] = {}

    def _touch(self, inc: Incident) -> Incident:
        self.touched_incidents[inc.id] = inc
        return super()._touch(inc)


class FeederStateCache:
    """See the module docstring. Use under ``async with cache.lock`` (one writer per process)."""

    def __init__(self, topology: Topology, rules: CorrelationRules | None = None) -> None:
        self.rules = rules or CorrelationRules()
        self.lock = asyncio.Lock()
        self.reloads = 0
        self._reset(topology)

    def _reset(self, topology: Topology) -> None:
        self.topology = topology
        self.corr = TrackingCorrelator(topology, self.rules)
        self.tokens: dict[str, str] = {}  # feeder → writer token of the state in memory
        self.metas: dict[str, IncidentMeta] = {}
        self.rows: dict[str, FeederRows] = {}
        self.feeder_partition: dict[str, int] = {}
        self.locked: set[str] = set()

    def replace_topology(self, topology: Topology) -> None:
        """A new topology: drop everything; feeders reload lazily against it."""
        self._reset(topology)

    # --- per transaction ---------------------------------------------------------------
    def begin(self) -> None:
        """Start a unit of work: no feeder locked yet, nothing dirty."""
        self.locked = set()
        self.corr.take_dirty()
        self.corr.touched_incidents = {}

    async def acquire(self, session: AsyncSession, feeders: set[str]) -> None:
        """Lock ``feeders`` (sorted, so writers never deadlock) and make their state current."""
        for f in sorted(feeders - self.locked):
            fv = await lock_feeder(session, f)
            if self.tokens.get(f) != fv.writer:
                self.evict(f)
                self._install(f, await load_feeder(session, f))
                self.tokens[f] = fv.writer
                self.reloads += 1
            self.locked.add(f)

    def due_feeders(self, now: datetime) -> set[str]:
        """Feeders in memory with a correlator timer at or before ``now``."""
        s, net = self.corr.s, self.corr.net
        out = {net.feeder_of(("customer", c)) for c, d in s.dwell_due.items() if d <= now}
        for timers in (s.confirm_due, s.nested_due):
            for i, d in timers.items():
                inc = s.incidents.get(i)
                if d <= now and inc is not None:
                    out.add(inc.feeder_id)
        return out

    def incident(self, incident_id: str) -> Incident | None:
        """A held incident (open, restored but not closed, or awaiting its nested check)."""
        return self.corr.s.incidents.get(incident_id)

    async def save(
        self,
        session: AsyncSession,
        now: datetime,
        extra: list[Incident] | None = None,
        metas: dict[str, IncidentMeta] | None = None,
    ) -> list[Incident]:
        """Write what changed on the locked feeders, bump them; the incidents written.

        ``extra`` are incidents changed outside the correlator (loaded on their own, e.g. a
        note on a closed incident); they are saved the same way. ``metas`` (by incident id)
        supplies what the database holds of incidents the cache holds no meta for (``extra``
        loaded on their own) and receives every meta this save used: the cache drops the
        metas of incidents it does not hold, so a second save in the same unit of work must
        pass the same dict to continue from the first (version, timeline numbering).
        """
        if metas is None:
            metas = {}
        corr, s, net = self.corr, self.corr.s, self.corr.net
        dirty = corr.take_dirty()
        touched, corr.touched_incidents = corr.touched_incidents, {}
        for inc in extra or ():
            touched[inc.id] = inc
        changed: set[str] = set()
        customers = []
        for c in sorted(dirty.customers):
            st = s.customers.get(c)
            if st is not None:
                f = net.feeder_of(("customer", c))
                customers.append((c, f, st))
                changed.add(f)
        await save_customers(session, customers)
        devices = []
        for d in sorted(dirty.devices):
            ds = s.devices.get(d)
            if ds is not None:
                f = net.feeder_of(("device", d))
                devices.append((d, f, ds))
                changed.add(f)
        await save_devices(session, devices)
        incidents = [touched[i] for i in sorted(touched)]
        for inc in incidents:
            if inc.id in s.incidents:
                metas[inc.id] = self.metas.setdefault(inc.id, IncidentMeta())
            else:  # finished just now (cache meta) or never held (caller's meta), else new
                metas[inc.id] = metas.get(inc.id) or self.metas.get(inc.id) or IncidentMeta()
        pairs = [(inc, metas[inc.id]) for inc in incidents]
        moved = [g for inc, m in pairs for g in gone_interruptions(inc, m)]
        await delete_interruptions(session, moved)
        for inc, meta in pairs:
            await save_incident(session, inc, meta, now)
            changed.add(inc.feeder_id)
            if inc.id not in s.incidents:
                self.metas.pop(inc.id, None)  # finished: no longer held in memory
        current = self._feeder_rows(self.locked, incidents)
        for f in sorted(self.locked):
            saved = self.rows.setdefault(f, FeederRows())
            if await save_feeder_rows(session, f, current[f], saved):
                changed.add(f)
        for f in sorted(changed & self.locked):
            timers = current[f].timers.values()
            fv = await bump_feeder(session, f, min(timers, default=None))
            self.tokens[f] = fv.writer
        for f in self.locked:
            s.seen_signal_ids.pop(f, None)  # processed_signals has them now
        return incidents

    # --- rebalance ---------------------------------------------------------------------
    def seen_on(self, feeder_id: str, partition: int) -> None:
        self.feeder_partition[feeder_id] = partition

    def evict_partitions(self, partitions: set[int]) -> None:
        """Forget the feeders last seen on ``partitions`` (another consumer owns them now)."""
        for f, p in list(self.feeder_partition.items()):
            if p in partitions:
                self.evict(f)
                del self.feeder_partition[f]

    def evict(self, feeder_id: str) -> None:
        """Drop one feeder's state from memory (it reloads on next use)."""
        corr, s, net = self.corr, self.corr.s, self.corr.net
        self.tokens.pop(feeder_id, None)
        saved = self.rows.pop(feeder_id, None)
        for c in [c for c in s.customers if net.feeder_of(("customer", c)) == feeder_id]:
            st = s.customers.pop(c)
            if st.status == "OFF":
                corr.off.unmark(c)
            elif st.status == "ON":
                corr.on.unmark(c)
            s.dwell_due.pop(c, None)
        for d in [d for d in s.devices if net.feeder_of(("device", d)) == feeder_id]:
            del s.devices[d]
        gone = {i for i, inc in s.incidents.items() if inc.feeder_id == feeder_id}
        for i in gone:
            del s.incidents[i]
            s.confirm_due.pop(i, None)
            s.nested_due.pop(i, None)
            self.metas.pop(i, None)
        for p in [p for p, i in corr.by_point.items() if i in gone]:
            del corr.by_point[p]
        for c in [c for c, i in s.holder.items() if i in gone]:
            del s.holder[c]
        s.issued_ids -= gone | (saved.issued if saved is not None else set())
        s.seen_signal_ids.pop(feeder_id, None)

    # --- internals ---------------------------------------------------------------------
    def _install(self, feeder_id: str, loaded: LoadedFeeder) -> None:
        corr, s, st = self.corr, self.corr.s, loaded.state
        for c, cs in st.customers.items():
            if c not in corr.net.cust_tx:
                continue  # no longer in the topology
            s.customers[c] = cs
            if cs.status == "OFF":
                corr.off.mark(c)
            elif cs.status == "ON":
                corr.on.mark(c)
        s.devices.update(st.devices)
        s.incidents.update(st.incidents)
        for inc in st.incidents.values():
            if lifecycle.is_open(inc):
                corr.by_point[point_of(inc)] = inc.id
        s.holder.update(st.holder)
        s.dwell_due.update(st.dwell_due)
        s.confirm_due.update(st.confirm_due)
        s.nested_due.update(st.nested_due)
        s.issued_ids |= st.issued_ids
        self.metas.update(loaded.metas)
        self.rows[feeder_id] = loaded.rows

    def _feeder_rows(self, feeders: set[str], touched: list[Incident]) -> dict[str, FeederRows]:
        """Current timers, holders and issued ids of ``feeders``, from memory."""
        s, net = self.corr.s, self.corr.net
        out = {f: FeederRows() for f in feeders}
        held = s.incidents
        for c, due in s.dwell_due.items():
            rows = out.get(net.feeder_of(("customer", c)))
            if rows is not None:
                rows.timers[("dwell", c)] = due
        for kind, timers in (("confirm", s.confirm_due), ("nested", s.nested_due)):
            for i, due in timers.items():
                inc = held.get(i)
                rows = out.get(inc.feeder_id) if inc is not None else None
                if rows is not None:
                    rows.timers[(kind, i)] = due
        for c, i in s.holder.items():
            inc = held.get(i)
            rows = out.get(inc.feeder_id) if inc is not None else None
            if rows is not None:
                rows.holders[c] = i
        for f, rows in out.items():
            saved = self.rows.get(f)
            rows.issued = set(saved.issued) if saved is not None else set()
        for inc in touched:  # every new id belongs to an incident created in this unit
            rows = out.get(inc.feeder_id)
            if rows is not None and inc.id in s.issued_ids:
                rows.issued.add(inc.id)
        return out
