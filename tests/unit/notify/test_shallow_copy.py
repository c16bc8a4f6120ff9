"""shallow_copy stands in for dataclasses.replace on the notify state's dataclasses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from services.notify.domain.job_state import Job, JobStatus
from services.notify.domain.model import IncidentInfo, Interruption, JobSpec
from services.notify.shallow import shallow_copy

T0 = datetime(2026, 7, 14, tzinfo=UTC)


class TestShallowCopy:
    def test_equal_to_replace_and_independent_of_the_original(self) -> None:
        interruption = Interruption("I1", "C1", T0, moved_from="I0", reported=True)
        info = IncidentInfo("I1", etr=T0, merged_into="I2", last_seq=7)
        for original in (interruption, info):
            copied = shallow_copy(original)
            assert copied == replace(original)
            assert copied is not original
        copied_interruption = shallow_copy(interruption)
        copied_interruption.restored_at = T0  # a later change to the kept one ...
        assert interruption.restored_at is None  # ... does not reach the other

    def test_changes_apply_to_a_frozen_job(self) -> None:
        job = Job(JobSpec("I1", "C1", "etr_set", 0, T0, {"etr": "x"}), attempts=2,
                  channel="sms")  # fmt: skip
        sent = shallow_copy(job, status=JobStatus.SENT)
        assert sent == replace(job, status=JobStatus.SENT)
        assert job.status is JobStatus.PENDING
