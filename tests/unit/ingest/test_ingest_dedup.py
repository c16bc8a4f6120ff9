from __future__ import annotations

import pytest

from services.ingest.domain.dedup import DedupWindow


class TestDedupWindow:
    def test_second_sighting_is_a_duplicate_within_a_batch(self) -> None:
        window = DedupWindow(10)
        assert window.check_and_add("a") is True
        assert window.check_and_add("a") is False

    def test_committed_ids_stay_duplicates(self) -> None:
        window = DedupWindow(10)
        window.check_and_add("a")
        window.commit()
        assert window.check_and_add("a") is False
        assert "a" in window

    def test_rollback_forgets_pending_ids_so_a_retried_batch_is_not_dropped(self) -> None:
        window = DedupWindow(10)
        window.check_and_add("a")
        window.commit()
        window.check_and_add("b")
        window.rollback()
        assert "b" not in window
        assert window.check_and_add("b") is True
        assert window.check_and_add("a") is False

    def test_oldest_ids_are_evicted_beyond_the_size(self) -> None:
        window = DedupWindow(3)
        for event_id in "abcd":
            window.check_and_add(event_id)
        window.commit()
        assert "a" not in window
        assert all(e in window for e in "bcd")
        assert len(window) == 3

    def test_eviction_wraps_around_the_ring_many_times(self) -> None:
        window = DedupWindow(5)
        for i in range(1000):
            assert window.check_and_add(str(i)) is True
            if i % 7 == 0:
                window.commit()
        window.commit()
        assert len(window) == 5
        assert [str(i) in window for i in range(994, 1000)] == [False] + [True] * 5

    def test_size_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            DedupWindow(0)
