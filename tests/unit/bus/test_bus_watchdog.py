from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter

from services.common.bus.watchdog import ProgressWatchdog


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(stall_after_s: float = 30.0) -> tuple[ProgressWatchdog, FakeMonotonic, Counter]:
    clock = FakeMonotonic()
    counter = Counter("restarts", "test", ["client"], registry=CollectorRegistry())
    return ProgressWatchdog("ingest", stall_after_s, now=clock, restarts=counter), clock, counter


def restarts(counter: Counter) -> float:
    return counter.labels(client="ingest")._value.get()


class TestProgressWatchdog:
    def test_no_progress_while_lagging_asks_for_a_restart_after_the_window(self) -> None:
        dog, clock, _ = make(30)
        assert dog.observe(processed=5, lag=100) is False
        clock.t += 29.9
        assert dog.observe(processed=0, lag=100) is False
        clock.t += 0.1
        assert dog.observe(processed=0, lag=100) is True

    def test_an_idle_client_without_lag_is_never_restarted(self) -> None:
        dog, clock, _ = make(30)
        for _ in range(10):
            clock.t += 60
            assert dog.observe(processed=0, lag=0) is False

    def test_progress_resets_the_window(self) -> None:
        dog, clock, _ = make(30)
        clock.t += 25
        assert dog.observe(processed=1, lag=50) is False
        clock.t += 25
        assert dog.observe(processed=0, lag=50) is False
        assert dog.stalled_for() == pytest.approx(25)

    def test_restart_is_counted_and_gives_the_new_client_a_full_window(self) -> None:
        dog, clock, counter = make(10)
        clock.t += 10
        assert dog.observe(processed=0, lag=3) is True
        dog.restarted()
        assert restarts(counter) == 1
        clock.t += 9
        assert dog.observe(processed=0, lag=3) is False
        clock.t += 1
        assert dog.observe(processed=0, lag=3) is True

    def test_a_non_positive_window_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="stall_after_s"):
            ProgressWatchdog("x", 0)
