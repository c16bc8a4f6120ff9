"""Decisions: which lifecycle events give which customer which notification, and when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notify.domain.decisions import (
    NotifyPolicy,
    check_due,
    decide,
    survey_sampled,
    touched_incidents,
)
from services.notify.domain.model import JobSpec, LifecycleEvent
from services.notify.domain.state import NotifyState

T0 = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Feed:
    """Builds lifecycle events with consecutive seqs per incident."""

    def __init__(self) -> None:
        self.seqs: dict[str, int] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}

    def event(
        self,
        incident_id: str,
        type_: str,
        minute: float,
        *,
        added: Iterable[Any] = (),
        restored: Iterable[Any] = (),
        **snapshot: Any,
    ) -> LifecycleEvent:
        seq = self.seqs.get(incident_id, 0) + 1
        self.seqs[incident_id] = seq
        snap = self.snapshots.setdefault(
            incident_id,
            {"id": incident_id, "kind": "outage", "status": "detected", "detected_at": at(0)},
        )
        snap.update(snapshot)
        wire = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in snap.items()}
        return LifecycleEvent.from_dict(
            {
                "event_id": f"{incident_id}:{seq}",
                "incident_id": incident_id,
                "seq": seq,
                "type": type_,
                "occurred_at": at(minute).isoformat(),
                "actor": "system",
                "incident": wire,
                "customers_added": list(added),
                "customers_restored": list(restored),
            }
        )


def stages(specs: list[JobSpec]) -> list[tuple[str, str]]:
    return [(s.customer_id, s.stage) for s in specs]


def send_when_due(spec: JobSpec, state: NotifyState) -> bool:
    """What the sender does: re-check, then mark the job sent or cancelled in the state."""
    verdict = check_due(spec, state)
    job = state.jobs[spec.key].claim(spec.due_at)
    state.jobs[spec.key] = (
        job.succeeded(spec.due_at, "sms", None)
        if verdict.send
        else job.cancel(verdict.reason or "", spec.due_at)
    )
    return verdict.send


class TestOutageDetected:
    def test_due_five_minutes_after_each_customers_interruption_start(self) -> None:
        feed, state = Feed(), NotifyState()
        specs = decide(
            feed.event(
                "I1", "opened", 1, added=["C1", {"customer_id": "C2", "interrupted_at": at(2)}]
            ),
            state,
        )
        assert [(s.customer_id, s.stage, s.due_at) for s in specs] == [
            ("C1", "outage_detected", at(5)),
            ("C2", "outage_detected", at(7)),
        ]

    def test_detected_late_is_due_at_once(self) -> None:
        feed, state = Feed(), NotifyState()
        specs = decide(feed.event("I1", "opened", 9, added=["C1"]), state)
        assert specs[0].due_at == at(9)

    def test_momentary_never_produces_a_message(self) -> None:
        feed, state = Feed(), NotifyState()
        specs = decide(feed.event("I1", "opened", 0, added=["C1", "C2"]), state)
        restored = decide(
            feed.event("I1", "momentary", 3, restored=["C1", "C2"], status="momentary"), state
        )
        assert restored == []
        assert [send_when_due(s, state) for s in specs] == [False, False]
        assert {j.cancel_reason for j in state.jobs.values()} == {"incident_momentary"}

    def test_customer_restored_before_due_is_cancelled_but_others_are_told(self) -> None:
        feed, state = Feed(), NotifyState()
        specs = decide(feed.event("I1", "opened", 0, added=["C1", "C2"]), state)
        decide(feed.event("I1", "partially_restored", 4, restored=["C1"]), state)
        assert [send_when_due(s, state) for s in specs] == [False, True]

    def test_a_restore_read_before_its_time_does_not_cancel_the_notice(self) -> None:
        # read already at the notice's due time, the restore at minute 30 has not happened yet
        feed, state = Feed(), NotifyState()
        (spec,) = decide(feed.event("I1", "opened", 0, added=["C1"]), state)
        decide(feed.event("I1", "restored", 30, restored=["C1"], status="restored"), state)
        assert check_due(spec, state, now=spec.due_at).send
        late = check_due(spec, state, now=at(31))
        assert (late.send, late.reason) == (False, "restored_before_notice")

    def test_replayed_event_creates_nothing(self) -> None:
        feed, state = Feed(), NotifyState()
        event = feed.event("I1", "opened", 0, added=["C1"])
        assert len(decide(event, state)) == 1
        assert decide(event, state) == []

    def test_cancelled_incident_cancels_pending_notice(self) -> None:
        feed, state = Feed(), NotifyState()
        specs = decide(feed.event("I1", "opened", 0, added=["C1"]), state)
        decide(feed.event("I1", "cancelled", 2, status="cancelled"), state)
        assert check_due(specs[0], state).reason == "incident_cancelled"


class TestLinkedIncidents:
    def test_customer_moved_into_nested_incident_is_not_told_twice(self) -> None:
        feed, state = Feed(), NotifyState()
        parent = decide(feed.event("P", "opened", 0, added=["C1", "C2"]), state)
        assert all(send_when_due(s, state) for s in parent)
        # re-energised at 30 min; C2 inferred restored, then found still out (nested check)
        decide(
            feed.event(
                "P",
                "restored",
                30,
                restored=["C1", {"customer_id": "C2", "source": "inferred", "verified": False}],
                status="restored",
            ),
            state,
        )
        nested = decide(
            feed.event(
                "N",
                "opened",
                40,
                added=[{"customer_id": "C2", "interrupted_at": at(0), "moved_from": "P"}],
                parent_incident_id="P",
            ),
            state,
        )
        assert "outage_detected" not in [s.stage for s in nested]

    def test_merged_customers_are_not_told_twice_even_when_pending(self) -> None:
        feed, state = Feed(), NotifyState()
        absorbed = decide(feed.event("A", "opened", 0, added=["C1"]), state)
        decide(feed.event("A", "merged", 2, status="merged", merged_into="B"), state)
        survivor = decide(
            feed.event("B", "scope_changed", 2, added=[{"customer_id": "C1", "moved_from": "A"}]),
            state,
        )
        assert survivor == []
        assert send_when_due(absorbed[0], state)  # the one notice still goes

    def test_nested_outage_notice_still_sent_when_parent_job_was_cancelled(self) -> None:
        feed, state = Feed(), NotifyState()
        parent = decide(feed.event("P", "opened", 0, added=["C1"]), state)
        inferred = {"customer_id": "C1", "source": "inferred"}
        decide(feed.event("P", "restored", 3, restored=[inferred], status="restored"), state)
        assert not send_when_due(parent[0], state)
        nested = decide(
            feed.event(
                "N",
                "opened",
                13,
                added=[{"customer_id": "C1", "moved_from": "P"}],
                parent_incident_id="P",
            ),
            state,
        )
        assert stages(nested) == [("C1", "outage_detected")]


class TestTransformerAbsorbedByFuse:
    """A transformer incident absorbed by the fuse incident upstream (the demo's storm
    fuses): the survivor's ``scope_changed`` names the absorbed incident (``moved_from``).
    Lifecycle events of different incidents may reach notify in either order."""

    def _events(self, feed: Feed) -> dict[str, LifecycleEvent]:
        moved = {"customer_id": "C1", "interrupted_at": at(0).isoformat(), "moved_from": "T"}
        return {
            "t_opened": feed.event("T", "opened", 0, added=["C1"]),
            "f_opened": feed.event("F", "opened", 0, added=["C2"]),
            "f_absorbs": feed.event("F", "scope_changed", 0.1, added=[moved]),
            "t_merged": feed.event("T", "merged", 0.1, status="merged", merged_into="F"),
        }

    @pytest.mark.parametrize(
        "order",
        [
            ("t_opened", "f_opened", "f_absorbs", "t_merged"),
            ("f_opened", "f_absorbs", "t_opened", "t_merged"),
            ("t_opened", "t_merged", "f_opened", "f_absorbs"),
        ],
    )
    def test_customer_still_out_is_told_once(self, order: tuple[str, ...]) -> None:
        feed, state = Feed(), NotifyState()
        events = self._events(feed)
        specs = [s for name in order for s in decide(events[name], state)]
        notices = [s for s in specs if s.stage == "outage_detected"]
        assert sorted(s.customer_id for s in notices) == ["C1", "C2"]
        assert [send_when_due(s, state) for s in notices] == [True, True]
        done = decide(
            feed.event("F", "restored", 60, restored=["C1", "C2"], status="restored"), state
        )
        assert sorted(stages(done)) == [("C1", "restored"), ("C2", "restored")]

    def test_customer_back_before_the_notice_is_not_told(self) -> None:
        feed, state = Feed(), NotifyState()
        events = self._events(feed)
        specs = [s for e in events.values() for s in decide(e, state)]
        decide(feed.event("F", "partially_restored", 3, restored=["C1"]), state)
        verdicts = {s.customer_id: send_when_due(s, state) for s in specs}
        assert verdicts == {"C1": False, "C2": True}


class TestRestored:
    def test_verified_restore_after_sustained_outage_is_told(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1"]), state)
        specs = decide(feed.event("I1", "restored", 60, restored=["C1"], status="restored"), state)
        assert ("C1", "restored") in stages(specs)
        assert [s.due_at for s in specs if s.stage == "restored"] == [at(60)]

    def test_inferred_restore_waits_for_confirmation(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1", "C2"]), state)
        inferred = {"customer_id": "C2", "source": "inferred", "restored_at": at(60).isoformat()}
        first = decide(
            feed.event("I1", "restored", 60, restored=["C1", inferred], status="restored"), state
        )
        assert [c for c, st in stages(first) if st == "restored"] == ["C1"]
        confirmed = {**inferred, "verified": True}
        later = decide(feed.event("I1", "scope_changed", 70, restored=[confirmed]), state)
        restored = [s for s in later if s.stage == "restored"]
        assert [(s.customer_id, s.due_at) for s in restored] == [("C2", at(70))]
        assert restored[0].payload["restored_at"] == at(60).isoformat()

    def test_customer_moved_to_nested_incident_never_gets_parents_restored(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("P", "opened", 0, added=["C2"]), state)
        inferred = {"customer_id": "C2", "source": "inferred"}
        specs = decide(feed.event("P", "restored", 30, restored=[inferred]), state)
        specs += decide(feed.event("P", "closed", 45, status="closed"), state)
        assert "restored" not in [s.stage for s in specs]

    def test_momentary_for_one_customer_gets_no_restored(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1", "C2"]), state)
        specs = decide(feed.event("I1", "partially_restored", 4, restored=["C1"]), state)
        assert specs == []

    def test_survey_sampling_is_deterministic_and_near_the_rate(self) -> None:
        policy = NotifyPolicy(survey_rate=0.2)
        picks = [survey_sampled("I1", f"C{n}", policy) for n in range(2000)]
        assert picks == [survey_sampled("I1", f"C{n}", policy) for n in range(2000)]
        assert 0.16 < sum(picks) / len(picks) < 0.24

    def test_sampled_customer_gets_survey_after_restored(self) -> None:
        policy = NotifyPolicy(survey_rate=1.0)
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1"]), state, policy)
        specs = decide(feed.event("I1", "restored", 60, restored=["C1"]), state, policy)
        assert [(s.stage, s.due_at) for s in specs] == [
            ("restored", at(60)),
            ("survey", at(120)),
        ]


class TestEtr:
    def test_first_etr_is_etr_set_and_waits_for_the_outage_notice(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1"]), state)
        specs = decide(feed.event("I1", "etr_set", 2, etr=at(120)), state)
        assert [(s.stage, s.revision, s.due_at) for s in specs] == [("etr_set", 0, at(5))]

    def test_etr_changed_only_when_moved_at_least_30_minutes(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1"]), state)
        decide(feed.event("I1", "etr_set", 10, etr=at(120)), state)
        assert decide(feed.event("I1", "etr_set", 20, etr=at(149)), state) == []
        moved = decide(feed.event("I1", "etr_set", 30, etr=at(150)), state)
        assert [(s.stage, s.revision) for s in moved] == [("etr_changed", 4)]
        # compared with the last ETR told (150), not the first
        assert decide(feed.event("I1", "etr_set", 40, etr=at(170)), state) == []
        earlier = decide(feed.event("I1", "etr_set", 50, etr=at(110)), state)
        assert [s.stage for s in earlier] == ["etr_changed"]

    def test_superseded_etr_message_is_cancelled_when_due(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1"]), state)
        first = decide(feed.event("I1", "etr_set", 10, etr=at(120)), state)
        decide(feed.event("I1", "etr_set", 11, etr=at(240)), state)
        assert check_due(first[0], state).reason == "superseded"

    def test_customer_added_later_gets_the_current_etr(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1"]), state)
        decide(feed.event("I1", "etr_set", 10, etr=at(120)), state)
        specs = decide(feed.event("I1", "scope_changed", 20, added=["C9"]), state)
        assert stages(specs) == [("C9", "outage_detected"), ("C9", "etr_set")]


class TestOtherStages:
    def test_crew_on_site_goes_to_customers_still_out(self) -> None:
        feed, state = Feed(), NotifyState()
        decide(feed.event("I1", "opened", 0, added=["C1", "C2"]), state)
        decide(feed.event("I1", "partially_restored", 20, restored=["C1"]), state)
        specs = decide(feed.event("I1", "crew_arrived", 30, status="on_site"), state)
        assert stages(specs) == [("C2", "crew_on_site")]

    def test_voltage_acknowledged_only_to_reporters(self) -> None:
        feed, state = Feed(), NotifyState()
        event = feed.event(
            "V1",
            "voltage_opened",
            0,
            kind="voltage",
            added=["C1", {"customer_id": "C2", "reported": True}],
        )
        assert stages(decide(event, state)) == [("C2", "voltage_acknowledged")]

    def test_a_customer_who_reports_later_is_acknowledged_once(self) -> None:
        feed, state = Feed(), NotifyState()
        opened = feed.event("V1", "voltage_opened", 0, kind="voltage", added=["C1", "C2"])
        assert decide(opened, state) == []
        # the incidents service lists the new reporter again, reported, in a scope_changed
        reporters = [{"customer_id": c, "reported": True} for c in ("C1", "C3")]
        later = feed.event("V1", "scope_changed", 10, added=reporters)
        assert stages(decide(later, state)) == [
            ("C1", "voltage_acknowledged"),
            ("C3", "voltage_acknowledged"),
        ]
        assert state.interruptions[("V1", "C1")].reported
        again = feed.event(
            "V1", "scope_changed", 20, added=[{"customer_id": "C1", "reported": True}]
        )
        assert decide(again, state) == []

    def test_a_reported_flag_on_a_known_outage_customer_adds_no_notice(self) -> None:
        feed, state = Feed(), NotifyState()
        assert stages(decide(feed.event("I1", "opened", 0, added=["C1"]), state)) == [
            ("C1", "outage_detected")
        ]
        event = feed.event(
            "I1", "scope_changed", 3, added=[{"customer_id": "C1", "reported": True}]
        )
        assert decide(event, state) == []

    def test_planned_notice_seven_and_one_day_before(self) -> None:
        feed, state = Feed(), NotifyState()
        start = at(10 * 24 * 60)
        event = feed.event(
            "PL", "planned_scheduled", 0, kind="planned", status="scheduled",
            planned_start=start, added=["C1"],
        )  # fmt: skip
        specs = decide(event, state)
        assert [(s.revision, s.due_at) for s in specs] == [
            (107, start - timedelta(days=7)),
            (101, start - timedelta(days=1)),
        ]

    def test_late_planned_notice_sent_at_once_and_rescheduling_renotifies(self) -> None:
        feed, state = Feed(), NotifyState()
        start = at(3 * 24 * 60)
        event = feed.event(
            "PL", "planned_scheduled", 0, kind="planned", status="scheduled",
            planned_start=start, added=["C1"],
        )  # fmt: skip
        first = decide(event, state)
        assert [s.due_at for s in first] == [at(0), start - timedelta(days=1)]
        moved = decide(
            feed.event("PL", "planned_scheduled", 5, planned_start=start + timedelta(days=7)),
            state,
        )
        assert len(moved) == 2
        assert check_due(first[1], state).reason == "rescheduled"
        assert check_due(moved[0], state).send

    def test_planned_outage_customers_told_restored_when_completed(self) -> None:
        feed, state = Feed(), NotifyState()
        start = at(60)
        decide(
            feed.event(
                "PL", "planned_scheduled", 0, kind="planned", status="scheduled",
                planned_start=start, added=["C1"],
            ),
            state,
        )  # fmt: skip
        decide(feed.event("PL", "planned_started", 60, status="in_progress"), state)
        done = decide(
            feed.event("PL", "planned_completed", 180, status="completed", restored=["C1"]), state
        )
        assert stages(done)[0] == ("C1", "restored")


class TestTouchedIncidents:
    """The handler saves only the interruptions of ``touched_incidents`` after each batch:
    decide must change no other (or a kept state's change would never be stored)."""

    def test_decide_changes_interruptions_of_the_touched_incidents_only(self) -> None:
        feed, state = Feed(), NotifyState()
        events = [
            feed.event("P", "opened", 0, added=["C1", "C2", "C3"]),
            feed.event("V", "opened", 1, added=["C4"], kind="voltage"),
            feed.event("V", "scope_changed", 2,
                       added=[{"customer_id": "C4", "reported": True}]),  # fmt: skip
            feed.event("P", "restored", 30, status="restored", restored=[
                "C1", {"customer_id": "C2", "source": "inferred", "verified": False}]),  # fmt: skip
            feed.event("N", "opened", 40, parent_incident_id="P",
                       added=[{"customer_id": "C2", "interrupted_at": at(0),
                               "moved_from": "P"}]),  # fmt: skip
            feed.event("P", "restored", 50, restored=["C3"]),
            feed.event("N", "restored", 60, status="restored", restored=["C2"]),
            feed.event("L", "planned_scheduled", 0, kind="planned", status="scheduled",
                       added=["C5"], planned_start=at(600), planned_end=at(700)),  # fmt: skip
            feed.event("L", "planned_started", 600, kind="planned", status="in_progress"),
        ]
        for event in events:
            before = {k: _sig(i) for k, i in state.interruptions.items()}
            touched = touched_incidents(event)
            decide(event, state)
            changed = {k for k, i in state.interruptions.items() if before.get(k) != _sig(i)}
            # each event here adds or changes one (a scheduled planned outage: none yet)
            assert changed or event.type == "planned_scheduled", event.type
            assert {inc for inc, _ in changed} <= touched, event.type
        assert state.interruptions[("P", "C2")].moved_to == "N"  # the moved_from case ran


def _sig(i: Any) -> tuple[Any, ...]:
    return (i.started_at, i.restored_at, i.restore_verified, i.moved_from, i.moved_to,
            i.reported)  # fmt: skip
