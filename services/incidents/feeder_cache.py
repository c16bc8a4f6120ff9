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
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.topology.model import Topology
from services.incidents.domain import lifecycle
from services.incidents.domain.correlation import Correlator, point_of
from services.incidents.domain.model import Incident
from services.incidents.domain.rules import CorrelationRules
from services.incidents.state_store import (
    FeederDelta,
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
    save_feeder_delta,
    save_incidents,
)


class TrackedDict(dict[Any, Any]):
    """A dict remembering every key written or removed (``changed``), so a save looks at
    those keys only instead of comparing a whole feeder's timers and holders per batch.
    Copies (``copy.deepcopy``, the correlator's export) are plain dicts."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: set[Any] = set()

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))

    def __setitem__(self, key: Any, value: Any) -> None:
        self.changed.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self.changed.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        self.changed.add(key)
        return dict.pop(self, key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self.changed.add(key)
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        items = dict(*args, **kwargs)
        self.changed.update(items)
        dict.update(self, items)

    def popitem(self) -> tuple[Any, Any]:
        key, value = dict.popitem(self)
        self.changed.add(key)
        return key, value

    def clear(self) -> None:
        self.changed.update(self)
        dict.clear(self)


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
        st = self.s
        st.holder, st.dwell_due = TrackedDict(), TrackedDict()
        st.confirm_due, st.nested_due, st.incidents = TrackedDict(), TrackedDict(), TrackedDict()

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
        await save_incidents(session, pairs, now, self.topology)
        for inc in incidents:
            changed.add(inc.feeder_id)
            if inc.id not in s.incidents:
                self.metas.pop(inc.id, None)  # finished: no longer held in memory
        deltas = self._feeder_deltas(incidents)
        for f in sorted(self.locked):
            if await save_feeder_delta(session, f, deltas.get(f, FeederDelta()), self.rows[f]):
                changed.add(f)
        for f in sorted(changed & self.locked):
            timers = self.rows[f].timers.values()  # = memory's, after the delta
            fv = await bump_feeder(
                session, f, min(timers, default=None), self.feeder_partition.get(f)
            )
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
        corr, s, topology = self.corr, self.corr.s, self.topology
        self.tokens.pop(feeder_id, None)
        saved = self.rows.pop(feeder_id, None)
        # The feeder's own customers and devices, from the topology the state was loaded
        # with: scanning every customer held (all feeders') per eviction was a tenth of an
        # incidents process's CPU in the 200,000-customer storm.
        head = topology.feeder_head.get(feeder_id)
        devices = list(topology.devices_below(head)) if head is not None else []
        customers = [c for d in devices for t in topology.transformers_by_device[d]
                     for c in topology.customers_by_transformer[t]]  # fmt: skip
        for c in customers:
            st = s.customers.pop(c, None)
            if st is None:
                continue
            if st.status == "OFF":
                corr.off.unmark(c)
            elif st.status == "ON":
                corr.on.unmark(c)
            s.dwell_due.pop(c, None)
        for d in devices:
            s.devices.pop(d, None)
        gone = {i for i, inc in s.incidents.items() if inc.feeder_id == feeder_id}
        for i in gone:
            del s.incidents[i]
            s.confirm_due.pop(i, None)
            s.nested_due.pop(i, None)
            self.metas.pop(i, None)
        for p in [p for p, i in corr.by_point.items() if i in gone]:
            del corr.by_point[p]
        for c in customers:  # an incident holds customers of its own feeder only
            if s.holder.get(c) in gone:
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
        # the next save judges every stored row of the feeder against memory once (a
        # holder row of an incident no longer held is deleted, as a full comparison did)
        s.holder.changed.update(loaded.rows.holders)  # type: ignore[attr-defined]
        timers = {"dwell": s.dwell_due, "confirm": s.confirm_due, "nested": s.nested_due}
        for kind, subject in loaded.rows.timers:
            timers[kind].changed.add(subject)  # type: ignore[attr-defined]

    def _feeder_deltas(self, touched: list[Incident]) -> dict[str, FeederDelta]:
        """What differs between memory and the stored timers, holders and issued ids of the
        locked feeders, judged on the keys written since the last save (``TrackedDict``)
        and, for incidents that joined or left the held set, their timers and holders.

        The same rows a full comparison of each locked feeder would find: a timer or holder
        row belongs to a feeder while its customer (dwell) or held incident is on it. Keys of
        feeders not locked now stay marked until a save that locks them."""
        s, net = self.corr.s, self.corr.net
        locked = self.locked
        rows = {f: self.rows.setdefault(f, FeederRows()) for f in locked}
        out: dict[str, FeederDelta] = {}
        held = s.incidents
        assert isinstance(held, TrackedDict)
        moved, held.changed = held.changed, set()
        pending: dict[str, set[Any]] = {}

        def judge(key: Any, home: str | None, value: Any, stored: str) -> bool:
            """Compare ``key`` (now ``value`` on feeder ``home``) with each locked feeder's
            rows; True when it must wait for ``home`` to be locked."""
            for f, saved in rows.items():
                old = getattr(saved, stored).get(key)
                cur = value if f == home else None
                if old != cur:
                    d = out.setdefault(f, FeederDelta())
                    if cur is None:
                        getattr(d, f"{stored}_gone").append(key)
                    else:
                        getattr(d, f"{stored}_set")[key] = cur
            return home is not None and home not in locked

        dwell = s.dwell_due
        assert isinstance(dwell, TrackedDict)
        keys, dwell.changed = dwell.changed, set()
        for c in keys:
            f = net.feeder_of(("customer", c))
            if f not in locked:
                pending.setdefault("dwell", set()).add(c)
                continue
            saved_due = rows[f].timers.get(("dwell", c))
            due = dwell.get(c)
            if due != saved_due:
                d = out.setdefault(f, FeederDelta())
                if due is None:
                    d.timers_gone.append(("dwell", c))
                else:
                    d.timers_set[("dwell", c)] = due
        for kind, timers in (("confirm", s.confirm_due), ("nested", s.nested_due)):
            assert isinstance(timers, TrackedDict)
            keys, timers.changed = timers.changed | moved, set()
            for i in keys:
                inc = held.get(i)
                home = inc.feeder_id if inc is not None else None
                if judge((kind, i), home, timers.get(i) if inc is not None else None, "timers"):
                    pending.setdefault(kind, set()).add(i)
        holder = s.holder
        assert isinstance(holder, TrackedDict)
        keys, holder.changed = holder.changed, set()
        if moved:  # rare: an incident opened, finished, loaded or evicted
            keys |= {c for c, i in holder.items() if i in moved}
            for saved in rows.values():
                keys |= {c for c, i in saved.holders.items() if i in moved}
        for c in keys:
            i = holder.get(c)
            inc = held.get(i) if i is not None else None
            home = inc.feeder_id if inc is not None else None
            if judge(c, home, i if inc is not None else None, "holders"):
                pending.setdefault("holder", set()).add(c)
        for inc in touched:  # every new id belongs to an incident created in this unit
            mine = rows.get(inc.feeder_id)
            if mine is not None and inc.id in s.issued_ids and inc.id not in mine.issued:
                out.setdefault(inc.feeder_id, FeederDelta()).issued_new.add(inc.id)
        dwell.changed |= pending.get("dwell", set())
        s.confirm_due.changed |= pending.get("confirm", set())  # type: ignore[attr-defined]
        s.nested_due.changed |= pending.get("nested", set())  # type: ignore[attr-defined]
        holder.changed |= pending.get("holder", set())
        return out
