"""Token buckets that limit each channel's send rate, on whatever clock they are given.

Refill is computed from the injected :class:`Clock`, never from a timer, so the same bucket
works on the wall clock and on the demo's virtual clock. A sender that finds no token
defers the job to :meth:`TokenBucket.available_at` (not an attempt) or awaits
:meth:`TokenBucket.acquire`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from services.common.clock import Clock


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` banked (the burst)."""

    def __init__(self, rate: float, capacity: float, clock: Clock) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock.now()

    def _refill(self) -> datetime:
        now = self._clock.now()
        elapsed = (now - self._updated).total_seconds()
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now
        return now

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def try_acquire(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if they are there now; never waits."""
        if n > self.capacity:
            raise ValueError("cannot take more tokens than the bucket holds")
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def take_up_to(self, n: float) -> float:
        """Take as many whole tokens as there are now, at most ``n``; how many were taken
        (a sender paying for a round before it knows which jobs it will send)."""
        self._refill()
        taken = float(max(0, min(int(n), int(self._tokens))))
        self._tokens -= taken
        return taken

    def give_back(self, n: float) -> None:
        """Return unused tokens taken by :meth:`take_up_to` (the bucket stays within its
        capacity)."""
        self._refill()
        self._tokens = min(self.capacity, self._tokens + n)

    def available_at(self, n: float = 1.0) -> datetime:
        """The earliest time ``n`` tokens will be available (now when they already are)."""
        now = self._refill()
        missing = n - self._tokens
        if missing <= 0:
            return now
        return now + timedelta(seconds=missing / self.rate)

    async def acquire(self, n: float = 1.0) -> None:
        """Wait on the clock until ``n`` tokens are available, then take them."""
        while not self.try_acquire(n):
            await self._clock.sleep_until(self.available_at(n))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class RateSlots:
    """Send times for jobs that found their channel's bucket empty.

    Each such job gets the next free slot of its channel: when the bucket will have a
    token for it *after* every job already waiting (one token per ``1 / rate`` seconds),
    rounded up to a grid of ``round_s`` so that the jobs of one round come due together
    and are claimed in one go. Without this every waiting job would be due again at the
    next single token and the whole backlog re-claimed for each message. The grid step is
    capped at ``capacity / rate`` so a round's jobs always fit in the bucket.
    """

    def __init__(self, round_s: float) -> None:
        if round_s <= 0:
            raise ValueError("round_s must be positive")
        self.round_s = round_s
        self._last: dict[str, datetime] = {}

    def next_slot(self, channel: str, bucket: TokenBucket) -> datetime:
        """The time to try again for one job on ``channel`` (reserves that slot)."""
        at = bucket.available_at()
        last = self._last.get(channel)
        if last is not None and last >= at:
            at = last + timedelta(seconds=1 / bucket.rate)
        self._last[channel] = at
        step = max(1, int(min(self.round_s, bucket.capacity / bucket.rate) * 1_000_000))
        micros = (at - _EPOCH) // _US
        return _EPOCH + _US * (-(-micros // step) * step)


class ChannelRateLimiter:
    """One :class:`TokenBucket` per channel; channels without a rate are unlimited."""

    def __init__(self, rates: Mapping[str, tuple[float, float]], clock: Clock) -> None:
        """``rates``: channel → (messages per second, burst)."""
        self._clock = clock
        self._buckets = {ch: TokenBucket(rate, burst, clock) for ch, (rate, burst) in rates.items()}

    def try_acquire(self, channel: str) -> bool:
        """Take a token for one message on ``channel``; ``False`` when over its rate."""
        bucket = self._buckets.get(channel)
        return bucket.try_acquire() if bucket else True

    def available_at(self, channel: str) -> datetime:
        """When the next message on ``channel`` may go."""
        bucket = self._buckets.get(channel)
        return bucket.available_at() if bucket else self._clock.now()
