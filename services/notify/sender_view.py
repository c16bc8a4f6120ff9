"""The sender's re-check state of a round read from the lifecycle handler's kept state
instead of the database, for a notify process that is the only writer of its schema (the
demo).

:func:`round_state` builds exactly what ``StateRepository.load_family(state, Baseline(),
seeds, customers, budget=..., job_stages=...)`` would load, walking the same links level by
level with the same budget, from a :class:`~services.notify.handlers.StateCache` that holds
the whole schema (``whole``): the incidents, the round's customers' interruptions in them,
and those customers' jobs of the re-checked stages that are not cancelled, in creation
order. What the sender's re-check reads of a job (its key, whether it is cancelled or sent)
is kept up to date in the cache by the sender's committed outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.notify.domain.job_state import JobStatus
from services.notify.handlers import StateCache
from services.notify.indexed_state import IndexedNotifyState
from services.notify.shallow import shallow_copy


def round_state(
    cache: StateCache,
    seeds: Iterable[str],
    customers: Sequence[str],
    *,
    budget: int,
    job_stages: Sequence[str],
) -> IndexedNotifyState | None:
    """The round's state, or None when the cache does not hold the whole schema."""
    if not cache.whole:
        return None
    kept = cache.state
    state = IndexedNotifyState()
    loaded: set[str] = set()
    frontier = {s for s in seeds if s}
    while frontier and budget > 0:
        ids = sorted(frontier)[:budget]
        budget -= len(ids)
        loaded.update(ids)
        wanted = set(ids)
        links: set[str] = set()
        # the incidents query: the ids, and every incident whose parent or survivor they are
        for info in kept.incidents.values():
            if (
                info.id in wanted
                or info.parent_incident_id in wanted
                or info.merged_into in wanted
            ):
                links.update(x for x in (info.id, info.parent_incident_id, info.merged_into) if x)
                if info.id in wanted:
                    state.incidents[info.id] = shallow_copy(info)
        for incident_id in ids:
            for customer in customers:
                found = kept.interruptions.get((incident_id, customer))
                if found is not None:
                    state.put_interruption(shallow_copy(found))
                    links.update(x for x in (found.moved_from, found.moved_to) if x)
        frontier = links - loaded
    stages = frozenset(job_stages)
    for customer in customers:
        # a customer's jobs in creation order: family_jobs reads one customer at a time
        for key in kept.by_customer.get(customer, ()):
            if key.incident_id in loaded and key.stage in stages:
                job = kept.jobs[key]
                if job.status is not JobStatus.CANCELLED:
                    state.put_job(job, key)
    return state
