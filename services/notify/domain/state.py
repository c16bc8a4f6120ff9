"""Notify's per-incident, per-customer memory, the input and output of the decisions.

The repository loads a :class:`NotifyState` for the incidents an event touches (the
incident, every incident linked to it by nesting or merge, and the customers' jobs in
them), the decisions update it, and the repository writes back what changed. ``jobs``
must be in creation order: "the last ETR told" is the last ETR job created.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from services.notify.domain.job_state import Job, JobStatus
from services.notify.domain.model import IncidentInfo, Interruption, JobKey, JobSpec, Stage


@dataclass(slots=True)
class NotifyState:
    incidents: dict[str, IncidentInfo] = field(default_factory=dict)
    interruptions: dict[tuple[str, str], Interruption] = field(default_factory=dict)
    # customers told of a planned outage, per planned incident (they are not out yet)
    planned_customers: dict[str, set[str]] = field(default_factory=dict)
    jobs: dict[JobKey, Job] = field(default_factory=dict)

    def family(self, incident_id: str) -> frozenset[str]:
        """Incidents linked to ``incident_id`` by nesting, merge or a moved customer.

        A customer is told each once-only stage once per family, whichever incident of it
        they are in.
        """
        edges: dict[str, set[str]] = {}

        def link(a: str, b: str | None) -> None:
            if b:
                edges.setdefault(a, set()).add(b)
                edges.setdefault(b, set()).add(a)

        for info in self.incidents.values():
            link(info.id, info.parent_incident_id)
            link(info.id, info.merged_into)
        for (inc, _), interruption in self.interruptions.items():
            link(inc, interruption.moved_from)
        seen = {incident_id}
        todo = [incident_id]
        while todo:
            for other in edges.get(todo.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return frozenset(seen)

    def interruption(self, incident_id: str, customer_id: str) -> Interruption | None:
        """The customer's interruption in that incident, if any."""
        return self.interruptions.get((incident_id, customer_id))

    def customer_interruptions(
        self, customer_id: str, family: frozenset[str]
    ) -> Iterator[Interruption]:
        """The customer's interruptions in the incidents of ``family``."""
        for inc in family:
            found = self.interruptions.get((inc, customer_id))
            if found is not None:
                yield found

    def out_in_family(
        self, customer_id: str, family: frozenset[str], at: datetime | None = None
    ) -> bool:
        """True when some live incident of the family has the customer out (at ``at``: a
        restore stamped later has not happened yet then).

        An absorbed (merged) incident only counts while the customer is in no other
        incident of the family, in case the survivor listed them without ``moved_from``.
        """
        found = list(self.customer_interruptions(customer_id, family))
        for i in found:
            info = self.incidents.get(i.incident_id)
            if info is None or info.void or not i.out_at(at):
                continue
            absorbed = info.merged_into is not None or info.status == "merged"
            if absorbed and any(o.incident_id != i.incident_id for o in found):
                continue
            return True
        return False

    def active_customers(self, incident_id: str) -> list[Interruption]:
        """Interruptions of the incident whose customer is still out."""
        return [i for (inc, _), i in self.interruptions.items() if inc == incident_id and i.out]

    def family_jobs(
        self, customer_id: str, family: frozenset[str], stages: tuple[Stage, ...]
    ) -> list[Job]:
        """The customer's jobs of these stages in the family, cancelled ones excluded."""
        return [
            job
            for key, job in self.jobs.items()
            if key.customer_id == customer_id
            and key.incident_id in family
            and key.stage in stages
            and job.status is not JobStatus.CANCELLED
        ]

    def told(self, customer_id: str, family: frozenset[str], stage: Stage) -> bool:
        """True when a job of ``stage`` exists for the customer in the family (not cancelled)."""
        return bool(self.family_jobs(customer_id, family, (stage,)))

    def last_told_etr(self, customer_id: str, family: frozenset[str]) -> datetime | None:
        """The ETR of the customer's latest etr_set / etr_changed job in the family."""
        jobs = self.family_jobs(customer_id, family, ("etr_set", "etr_changed"))
        if not jobs:
            return None
        value = jobs[-1].spec.payload.get("etr")
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    def add_job(self, spec: JobSpec) -> bool:
        """Record a new pending job; ``False`` when its idempotency key already exists."""
        if spec.key in self.jobs:
            return False
        self.jobs[spec.key] = Job.new(spec)
        return True
