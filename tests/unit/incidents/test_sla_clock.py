from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.incidents.domain.sla_clock import (
    DeadlineRow,
    IncidentTimes,
    SlaTargets,
    deadline_rows,
    due_events,
    evaluate,
    mark_emitted,
    next_deadline,
    next_wakeup,
    refresh,
    restore_breach_minutes,
    sla_summary,
)

T0 = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)
URBAN = SlaTargets()
M = timedelta(minutes=1)


def _status(times: IncidentTimes, target: str, now: datetime) -> str:
    return sla_summary(times, URBAN, now)[target]


class TestStatuses:
    def test_acknowledge_boundaries(self) -> None:
        times = IncidentTimes(detected_at=T0)
        # 5 min target: at risk from 4 min (80 %), breached from 5 min.
        assert _status(times, "acknowledge", T0 + 4 * M - timedelta(seconds=1)) == "on_track"
        assert _status(times, "acknowledge", T0 + 4 * M) == "at_risk"
        assert _status(times, "acknowledge", T0 + 5 * M - timedelta(seconds=1)) == "at_risk"
        assert _status(times, "acknowledge", T0 + 5 * M) == "breached"

    def test_completion_at_the_deadline_is_met_and_after_it_breached(self) -> None:
        on_time = IncidentTimes(detected_at=T0, acknowledged_at=T0 + 5 * M)
        late = IncidentTimes(detected_at=T0, acknowledged_at=T0 + 5 * M + timedelta(seconds=1))
        assert _status(on_time, "acknowledge", T0 + 60 * M) == "met"
        assert _status(late, "acknowledge", T0 + 60 * M) == "breached"

    def test_restore_after_arrival_starts_only_when_the_crew_arrives(self) -> None:
        times = IncidentTimes(detected_at=T0)
        assert "restore_after_arrival" not in sla_summary(times, URBAN, T0 + M)
        arrived = IncidentTimes(detected_at=T0, crew_arrived_at=T0 + 40 * M)
        states = {s.target: s for s in evaluate(arrived, URBAN, T0 + 41 * M)}
        assert states["on_site"].status == "met"
        assert states["restore_after_arrival"].due_at == T0 + 220 * M
        assert states["restore_overall"].due_at == T0 + 225 * M

    def test_ended_incident_drops_targets_not_yet_due(self) -> None:
        momentary = IncidentTimes(detected_at=T0, ended_at=T0 + 3 * M)
        assert sla_summary(momentary, URBAN, T0 + 600 * M) == {}
        cancelled_late = IncidentTimes(detected_at=T0, acknowledged_at=T0 + M, ended_at=T0 + 60 * M)
        summary = sla_summary(cancelled_late, URBAN, T0 + 600 * M)
        assert summary["on_site"] == "breached"  # 45 min passed before the cancel
        assert "restore_overall" not in summary

    def test_planned_notice_seven_days_ahead_and_temporary_24_hours(self) -> None:
        start = T0 + timedelta(days=10)
        planned = IncidentTimes(kind="planned", scheduled_at=T0, planned_start=start)
        (state,) = evaluate(planned, URBAN, T0)
        assert state.due_at == start - timedelta(days=7)
        assert state.at_risk_at == T0 + timedelta(days=3) * 0.8
        temporary = IncidentTimes(
            kind="planned", scheduled_at=T0, planned_start=start, temporary=True,
            planned_notice_at=start - timedelta(hours=24),
        )  # fmt: skip
        assert sla_summary(temporary, URBAN, start) == {"planned_notice": "met"}

    def test_voltage_incident_only_has_acknowledge(self) -> None:
        times = IncidentTimes(kind="voltage", detected_at=T0)
        assert set(sla_summary(times, URBAN, T0)) == {"acknowledge"}

    def test_next_deadline_is_the_earliest_future_instant(self) -> None:
        times = IncidentTimes(detected_at=T0)
        assert next_deadline(times, URBAN, T0) == T0 + 4 * M  # acknowledge at-risk


class TestNextDeadline:
    def test_skips_completed_targets(self) -> None:
        acked = IncidentTimes(detected_at=T0, acknowledged_at=T0 + M)
        assert next_deadline(acked, URBAN, T0 + 2 * M) == T0 + 12 * M  # first_notice at risk

    def test_none_when_everything_is_done(self) -> None:
        done = IncidentTimes(
            detected_at=T0, acknowledged_at=T0 + M, crew_arrived_at=T0 + 30 * M,
            restored_at=T0 + 60 * M, first_notice_at=T0 + 10 * M,
        )  # fmt: skip
        assert next_deadline(done, URBAN, T0 + 61 * M) is None


class FakeDeadlineStore:
    """Stands in for the deadline table: rows survive a 'restart', in-memory state does not."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], DeadlineRow] = {}
        self.outbox: list[tuple[str, str, str]] = []

    def upsert(self, rows: list[DeadlineRow]) -> None:
        for row in rows:
            key = (row.incident_id, row.target)
            self.rows[key] = refresh(self.rows.get(key), row)

    def run_due(self, now: datetime) -> datetime | None:
        """One scheduler pass; the event and its flag are 'committed' together."""
        for event in due_events(self.rows.values(), now):
            key = (event.incident_id, event.target)
            self.rows[key] = mark_emitted(self.rows[key], event)
            self.outbox.append((event.incident_id, event.target, event.type))
        return next_wakeup(self.rows.values())


class TestExactlyOnceEmission:
    def test_each_event_once_across_a_restart(self) -> None:
        store = FakeDeadlineStore()
        times = IncidentTimes(detected_at=T0)
        store.upsert(deadline_rows("I1", times, URBAN))

        wake = store.run_due(T0)
        assert store.outbox == []
        assert wake == T0 + 4 * M
        store.run_due(T0 + 4 * M)
        assert store.outbox == [("I1", "acknowledge", "sla_at_risk")]

        # "Restart": a fresh scheduler over the same stored rows, run twice at one instant.
        restarted = FakeDeadlineStore()
        restarted.rows = dict(store.rows)
        restarted.run_due(T0 + 4 * M)
        restarted.run_due(T0 + 5 * M)
        restarted.run_due(T0 + 5 * M)
        assert restarted.outbox == [("I1", "acknowledge", "sla_breached")]

    def test_downtime_past_both_deadlines_emits_both_in_order(self) -> None:
        store = FakeDeadlineStore()
        store.upsert(deadline_rows("I1", IncidentTimes(detected_at=T0), URBAN))
        store.run_due(T0 + 20 * M)
        assert store.outbox == [
            ("I1", "acknowledge", "sla_at_risk"),
            ("I1", "acknowledge", "sla_breached"),
            ("I1", "first_notice", "sla_at_risk"),
            ("I1", "first_notice", "sla_breached"),
        ]

    def test_met_target_stops_owing_events_and_flags_survive_refresh(self) -> None:
        store = FakeDeadlineStore()
        store.upsert(deadline_rows("I1", IncidentTimes(detected_at=T0), URBAN))
        store.run_due(T0 + 4 * M)  # acknowledge at risk
        acked = IncidentTimes(detected_at=T0, acknowledged_at=T0 + 4 * M + timedelta(seconds=30))
        store.upsert(deadline_rows("I1", acked, URBAN))
        row = store.rows[("I1", "acknowledge")]
        assert row.completed
        assert row.at_risk_emitted
        store.run_due(T0 + 10 * M)
        assert ("I1", "acknowledge", "sla_breached") not in store.outbox

    def test_mark_emitted_rejects_a_foreign_event(self) -> None:
        rows = deadline_rows("I1", IncidentTimes(detected_at=T0), URBAN)
        (event, *_) = due_events(rows, T0 + 5 * M)
        with pytest.raises(ValueError, match="does not belong"):
            mark_emitted(rows[1], event)


class TestRestoreBreach:
    def test_minutes_past_the_area_commitment(self) -> None:
        rural = SlaTargets(restore_overall=timedelta(hours=5, minutes=30))
        assert restore_breach_minutes(330, rural) == 0.0
        assert restore_breach_minutes(400, rural) == 70.0
        assert restore_breach_minutes(240, URBAN) == 15.0
