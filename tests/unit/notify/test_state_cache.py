"""The kept decision state and the sender's outcomes: a job the sender cancels or sends
while a family is being read from the database may arrive in the read as it was before
that commit; the kept state must end with the committed status all the same."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notify.domain.job_state import JobStatus
from services.notify.domain.model import JobSpec
from services.notify.handlers import StateCache

T0 = datetime(2026, 7, 14, tzinfo=UTC)
NOTICE = JobSpec("INC1", "C1", "outage_detected", 0, T0)
ETR = JobSpec("INC1", "C1", "etr_set", 0, T0)


class TestOutcomesDuringALoad:
    def test_an_outcome_committed_before_the_read_brought_the_job_in_wins(self) -> None:
        cache = StateCache()
        cache.loading()
        cache.cancelled([NOTICE.key])  # the sender commits; the job is not held yet
        cache.sent([ETR.key])
        cache.state.add_job(NOTICE)  # the read, taken before that commit: pending
        cache.state.add_job(ETR)
        cache.loaded()
        assert cache.state.jobs[NOTICE.key].status is JobStatus.CANCELLED
        assert cache.state.jobs[ETR.key].status is JobStatus.SENT

    def test_outcomes_of_held_jobs_apply_at_once_and_are_not_kept_after_the_load(
        self,
    ) -> None:
        cache = StateCache()
        cache.state.add_job(NOTICE)
        cache.cancelled([NOTICE.key])
        assert cache.state.jobs[NOTICE.key].status is JobStatus.CANCELLED
        cache.loading()
        cache.loaded()
        cache.state.add_job(ETR)  # a job created later is not touched by old outcomes
        cache.sent([NOTICE.key])
        assert cache.state.jobs[ETR.key].status is JobStatus.PENDING

    def test_clear_drops_the_state_and_the_load_in_flight(self) -> None:
        cache = StateCache(whole=True)
        cache.state.add_job(NOTICE)
        cache.loading()
        cache.clear()
        cache.cancelled([ETR.key])
        cache.state.add_job(ETR)
        cache.loaded()
        assert not cache.whole
        assert list(cache.state.jobs) == [ETR.key]
        assert cache.state.jobs[ETR.key].status is JobStatus.PENDING
        assert cache.size == 1
