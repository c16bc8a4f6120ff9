"""The sender's round state read from the kept lifecycle state holds what the database
load of a round holds: the linked incidents, the round's customers' interruptions and
their not-cancelled jobs of the re-checked stages, in creation order."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notify.domain.job_state import JobStatus
from services.notify.domain.model import IncidentInfo, Interruption, JobSpec
from services.notify.handlers import StateCache
from services.notify.sender_view import round_state

T0 = datetime(2026, 7, 14, tzinfo=UTC)
STAGES = ("outage_detected", "etr_set", "etr_changed")


def _cache() -> StateCache:
    cache = StateCache(whole=True)
    s = cache.state
    s.incidents = {
        "P": IncidentInfo("P"),
        "N": IncidentInfo("N", parent_incident_id="P"),
        "M": IncidentInfo("M", status="merged", merged_into="S"),
        "S": IncidentInfo("S"),
        "X": IncidentInfo("X"),
    }
    for inc, customer, moved in (("P", "C1", None), ("N", "C1", "P"), ("S", "C2", "M"),
                                 ("M", "C2", None), ("X", "C3", None), ("P", "C4", None)):
        s.interruptions[(inc, customer)] = Interruption(inc, customer, T0, moved_from=moved)
    for inc, customer, stage, rev in (("P", "C1", "outage_detected", 0),
                                      ("N", "C1", "etr_set", 0), ("N", "C1", "restored", 0),
                                      ("P", "C1", "etr_changed", 3), ("X", "C3", "etr_set", 0),
                                      ("M", "C2", "outage_detected", 0)):
        s.add_job(JobSpec(inc, customer, stage, rev, T0))  # type: ignore[arg-type]
    return cache


class TestRoundState:
    def test_a_cache_not_holding_the_whole_schema_gives_nothing(self) -> None:
        cache = _cache()
        cache.whole = False
        assert round_state(cache, ["N"], ["C1"], budget=64, job_stages=STAGES) is None

    def test_links_of_the_round_customers_and_their_jobs(self) -> None:
        state = round_state(_cache(), ["N"], ["C1"], budget=64, job_stages=STAGES)
        assert state is not None
        assert set(state.incidents) == {"N", "P"}
        assert set(state.interruptions) == {("N", "C1"), ("P", "C1")}  # not C4's
        assert [(k.incident_id, k.stage) for k in state.by_customer["C1"]] == [
            ("P", "outage_detected"), ("N", "etr_set"), ("P", "etr_changed")]  # no restored
        assert state.family("N") == frozenset({"N", "P"})

    def test_a_survivor_reaches_the_absorbed_incident(self) -> None:
        cache = _cache()
        cache.cancelled([next(k for k in cache.state.jobs if k.incident_id == "M")])
        state = round_state(cache, ["S"], ["C2"], budget=64, job_stages=STAGES)
        assert state is not None
        assert set(state.incidents) == {"S", "M"}
        assert "C2" not in state.by_customer  # its only job was cancelled

    def test_sent_jobs_are_seen_as_sent(self) -> None:
        cache = _cache()
        key = next(k for k in cache.state.jobs if k.incident_id == "X")
        cache.sent([key])
        state = round_state(cache, ["X"], ["C3"], budget=64, job_stages=STAGES)
        assert state is not None
        assert state.jobs[key].status is JobStatus.SENT

    def test_the_budget_stops_the_walk_as_the_database_load_does(self) -> None:
        state = round_state(_cache(), ["N"], ["C1"], budget=1, job_stages=STAGES)
        assert state is not None
        assert set(state.incidents) == {"N"}
        assert [k.incident_id for k in state.by_customer["C1"]] == ["N"]

    def test_the_kept_state_is_not_shared(self) -> None:
        cache = _cache()
        state = round_state(cache, ["X"], ["C3"], budget=64, job_stages=STAGES)
        assert state is not None
        state.interruptions[("X", "C3")].restored_at = T0
        assert cache.state.interruptions[("X", "C3")].restored_at is None
