"""A :class:`NotifyState` with per-customer job and per-incident interruption indexes.

The domain's state scans every job for each customer it asks about, which is quadratic for
a feeder outage of 100,000 customers (an ``etr_set`` asks about each of them), and walks
every interruption for each family it is asked for, which is quadratic in a state kept
between batches (the demo's sole writer). This subclass answers the same questions from
indexes. Jobs must be added through :meth:`put_job` / :meth:`add_job` (not by writing
``jobs`` directly) to stay indexed; the domain only adds jobs through ``add_job``.

Interruptions are indexed as they are added: the domain adds new keys only (it never
replaces an interruption, and never changes ``moved_from``), so the index reads just the
entries added since it last looked (a dict keeps insertion order). A loader that may
replace an existing interruption uses :meth:`put_interruption`, which re-indexes them all;
so does a new ``interruptions`` dict or one that shrank.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain, islice

from services.notify.domain.job_state import Job, JobStatus
from services.notify.domain.model import Interruption, JobKey, JobSpec, Stage
from services.notify.domain.state import NotifyState


def _by_customer_id(interruption: Interruption) -> str:
    return interruption.customer_id


@dataclass(slots=True)
class IndexedNotifyState(NotifyState):
    by_customer: dict[str, list[JobKey]] = field(default_factory=dict)
    _by_incident: dict[str, list[Interruption]] = field(default_factory=dict)
    # incident → incidents linked to it by a moved customer (both directions)
    _moves: dict[str, set[str]] = field(default_factory=dict)
    _indexed: int = 0  # interruptions indexed, in insertion order
    _indexed_of: dict[tuple[str, str], Interruption] | None = None  # the dict indexed
    _families: dict[str, frozenset[str]] | None = None

    def freeze_families(self) -> None:
        """Memoise :meth:`family` from now on, for a reader whose incidents and
        interruptions no longer change (the sender's round)."""
        self._families = {}

    def family(self, incident_id: str) -> frozenset[str]:
        """Incidents linked to ``incident_id`` (as :meth:`NotifyState.family`; memoised
        after :meth:`freeze_families`)."""
        if self._families is None:
            return self._walk(incident_id)
        found = self._families.get(incident_id)
        if found is None:
            found = self._walk(incident_id)
            for member in found:  # a family is a connected component: one walk for all
                self._families[member] = found
        return found

    def _walk(self, incident_id: str) -> frozenset[str]:
        self._index_interruptions()
        # Incident links are few and change in place (a merge sets merged_into): read anew.
        links: dict[str, list[str]] = {}
        for info in self.incidents.values():
            for other in (info.parent_incident_id, info.merged_into):
                if other:
                    links.setdefault(info.id, []).append(other)
                    links.setdefault(other, []).append(info.id)
        moves = self._moves
        seen = {incident_id}
        todo = [incident_id]
        while todo:
            current = todo.pop()
            for other in chain(links.get(current, ()), moves.get(current, ())):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return frozenset(seen)

    def put_interruption(self, interruption: Interruption) -> None:
        """Record an interruption, replacing one of the same incident and customer."""
        key = (interruption.incident_id, interruption.customer_id)
        if key in self.interruptions:
            self._indexed_of = None  # replaced: index them all again
        self.interruptions[key] = interruption

    def _index_interruptions(self) -> None:
        current = self.interruptions
        if self._indexed_of is not current or len(current) < self._indexed:
            self._by_incident, self._moves, self._indexed = {}, {}, 0
            self._indexed_of = current
        if len(current) == self._indexed:
            return
        touched: set[str] = set()
        by_incident, moves = self._by_incident, self._moves
        for (inc, _), interruption in islice(current.items(), self._indexed, None):
            by_incident.setdefault(inc, []).append(interruption)
            touched.add(inc)
            if interruption.moved_from:
                moves.setdefault(inc, set()).add(interruption.moved_from)
                moves.setdefault(interruption.moved_from, set()).add(inc)
        for inc in touched:
            # customer order, however the state was filled (loaded at once or built up
            # over batches): the jobs made for them are created in this order
            by_incident[inc].sort(key=_by_customer_id)
        self._indexed = len(current)

    def interruptions_of(self, incident_ids: Iterable[str]) -> list[Interruption]:
        """The interruptions of these incidents (each incident's in customer order)."""
        self._index_interruptions()
        by_incident = self._by_incident
        return [i for inc in incident_ids for i in by_incident.get(inc, ())]

    def put_job(self, job: Job, key: JobKey | None = None) -> None:
        """Record a job loaded from storage (in creation order)."""
        key = key or job.spec.key
        if key not in self.jobs:
            self.by_customer.setdefault(key.customer_id, []).append(key)
        self.jobs[key] = job

    def add_job(self, spec: JobSpec) -> bool:
        """Record a new pending job; ``False`` when its idempotency key already exists."""
        key = spec.key  # a frozen dataclass: building it is not free at 100,000 jobs
        if key in self.jobs:
            return False
        self.by_customer.setdefault(key.customer_id, []).append(key)
        self.jobs[key] = Job(spec=spec, due_at=spec.due_at)
        return True

    def family_jobs(
        self, customer_id: str, family: frozenset[str], stages: tuple[Stage, ...]
    ) -> list[Job]:
        """The customer's jobs of these stages in the family, cancelled ones excluded."""
        found = []
        jobs = self.jobs
        for key in self.by_customer.get(customer_id, ()):
            if key.stage in stages and key.incident_id in family:
                job = jobs[key]
                if job.status is not JobStatus.CANCELLED:
                    found.append(job)
        return found

    def active_customers(self, incident_id: str) -> list[Interruption]:
        """Interruptions of the incident whose customer is still out."""
        self._index_interruptions()
        return [i for i in self._by_incident.get(incident_id, ()) if i.out]
