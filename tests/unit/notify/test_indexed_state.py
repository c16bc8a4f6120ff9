"""The indexed state answers as the domain's state does, also with memoised families."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notify.domain.model import IncidentInfo, Interruption
from services.notify.domain.state import NotifyState
from services.notify.indexed_state import IndexedNotifyState

T0 = datetime(2026, 7, 14, tzinfo=UTC)


class TestFrozenFamilies:
    def test_memoised_families_equal_the_walked_ones(self) -> None:
        state = IndexedNotifyState()
        state.incidents = {
            "T": IncidentInfo("T", status="merged", merged_into="F"),
            "F": IncidentInfo("F"),
            "N": IncidentInfo("N", parent_incident_id="P"),
            "P": IncidentInfo("P"),
            "X": IncidentInfo("X"),
        }
        state.interruptions[("F", "C1")] = Interruption("F", "C1", T0, moved_from="T")
        walked = {i: state.family(i) for i in state.incidents}
        state.freeze_families()
        assert {i: state.family(i) for i in state.incidents} == walked
        assert walked["T"] == walked["F"] == frozenset({"T", "F"})
        assert walked["N"] == frozenset({"N", "P"})
        assert walked["X"] == frozenset({"X"})


class TestInterruptionIndex:
    def test_families_follow_interruptions_added_after_a_walk(self) -> None:
        state = IndexedNotifyState()
        state.incidents = {i: IncidentInfo(i) for i in ("A", "B", "C")}
        state.interruptions[("A", "C1")] = Interruption("A", "C1", T0)
        assert state.family("A") == frozenset({"A"})
        state.interruptions[("B", "C1")] = Interruption("B", "C1", T0, moved_from="A")
        state.incidents["C"].merged_into = "B"  # a merge changes an incident in place
        assert state.family("A") == NotifyState.family(state, "A") == frozenset({"A", "B", "C"})

    def test_a_replaced_interruption_drops_its_old_move(self) -> None:
        state = IndexedNotifyState()
        state.incidents = {i: IncidentInfo(i) for i in ("A", "B")}
        state.put_interruption(Interruption("B", "C1", T0, moved_from="A"))
        assert state.family("B") == frozenset({"A", "B"})
        state.put_interruption(Interruption("B", "C1", T0))
        assert state.family("B") == NotifyState.family(state, "B") == frozenset({"B"})

    def test_a_new_interruptions_dict_is_indexed_afresh(self) -> None:
        state = IndexedNotifyState()
        state.interruptions[("A", "C2")] = Interruption("A", "C2", T0)
        assert [i.customer_id for i in state.active_customers("A")] == ["C2"]
        state.interruptions = {("A", "C3"): Interruption("A", "C3", T0)}
        assert [i.customer_id for i in state.active_customers("A")] == ["C3"]

    def test_active_customers_in_customer_order_however_added(self) -> None:
        state = IndexedNotifyState()
        for customer in ("C3", "C1"):
            state.interruptions[("A", customer)] = Interruption("A", customer, T0)
        assert [i.customer_id for i in state.active_customers("A")] == ["C1", "C3"]
        state.interruptions[("A", "C2")] = Interruption("A", "C2", T0)
        state.interruptions[("A", "C1")].restored_at = T0
        assert [i.customer_id for i in state.active_customers("A")] == ["C2", "C3"]
