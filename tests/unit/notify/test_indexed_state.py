"""The indexed state answers as the domain's state does, also with memoised families."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notify.domain.model import IncidentInfo, Interruption
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
