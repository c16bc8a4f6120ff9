"""A :class:`NotifyState` with per-customer job and per-incident interruption indexes.

The domain's state scans every job for each customer it asks about, which is quadratic for
a feeder outage of 100,000 customers (an ``etr_set`` asks about each of them). This
subclass answers the same questions from indexes. Jobs must be added through
:meth:`put_job` / :meth:`add_job` (not by writing ``jobs`` directly) to stay indexed; the
domain only adds jobs through ``add_job``. Interruptions the domain adds directly are
picked up by :meth:`active_customers` through a cheap size check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.notify.domain.job_state import Job, JobStatus
from services.notify.domain.model import Interruption, JobKey, JobSpec, Stage
from services.notify.domain.state import NotifyState


@dataclass(slots=True)
class IndexedNotifyState(NotifyState):
    by_customer: dict[str, list[JobKey]] = field(default_factory=dict)
    _by_incident: dict[str, list[Interruption]] = field(default_factory=dict)
    _indexed_interruptions: int = -1
    _families: dict[str, frozenset[str]] | None = None

    def freeze_families(self) -> None:
        """Memoise :meth:`family` from now on, for a reader whose incidents and
        interruptions no longer change (the sender's round): each due check otherwise
        walks every interruption loaded for the round, quadratic in the round's size."""
        self._families = {}

    def family(self, incident_id: str) -> frozenset[str]:
        """Incidents linked to ``incident_id`` (memoised after :meth:`freeze_families`)."""
        if self._families is None:
            return NotifyState.family(self, incident_id)
        found = self._families.get(incident_id)
        if found is None:
            found = NotifyState.family(self, incident_id)
            for member in found:  # a family is a connected component: one walk for all
                self._families[member] = found
        return found

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
        for key in self.by_customer.get(customer_id, ()):
            if key.incident_id in family and key.stage in stages:
                job = self.jobs[key]
                if job.status is not JobStatus.CANCELLED:
                    found.append(job)
        return found

    def active_customers(self, incident_id: str) -> list[Interruption]:
        """Interruptions of the incident whose customer is still out."""
        if self._indexed_interruptions != len(self.interruptions):
            self._by_incident = {}
            for (inc, _), interruption in self.interruptions.items():
                self._by_incident.setdefault(inc, []).append(interruption)
            for found in self._by_incident.values():
                # customer order, however the state was filled (loaded at once or built up
                # over batches): the jobs made for them are created in this order
                found.sort(key=lambda i: i.customer_id)
            self._indexed_interruptions = len(self.interruptions)
        return [i for i in self._by_incident.get(incident_id, ()) if i.out]
