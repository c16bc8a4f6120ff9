"""A bounded window of recently seen event ids, to drop duplicates the sources re-send.

A ring buffer plus a set: O(1) membership and eviction, fixed memory. Marks made while a
batch is processed are *pending* until :meth:`DedupWindow.commit`; if the batch fails and
is re-read, :meth:`DedupWindow.rollback` forgets them so the retry is not taken for
duplicates of itself (which would lose signals).
"""

from __future__ import annotations

DEFAULT_WINDOW_SIZE = 200_000


class DedupWindow:
    """The last ``size`` distinct ids committed, plus the current batch's pending ids."""

    __slots__ = ("_ring", "_pos", "_seen", "_pending", "size")

    def __init__(self, size: int = DEFAULT_WINDOW_SIZE) -> None:
        if size < 1:
            raise ValueError("dedup window size must be at least 1")
        self.size = size
        self._ring: list[str | None] = [None] * size
        self._pos = 0
        self._seen: set[str] = set()
        self._pending: dict[str, None] = {}  # insertion-ordered set

    def check_and_add(self, event_id: str) -> bool:
        """True when ``event_id`` is new (and now pending), False when already seen."""
        if event_id in self._seen or event_id in self._pending:
            return False
        self._pending[event_id] = None
        return True

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._seen or event_id in self._pending

    def __len__(self) -> int:
        return len(self._seen) + len(self._pending)

    def commit(self) -> None:
        """Make the pending ids part of the window, evicting the oldest beyond ``size``."""
        ring, seen, size = self._ring, self._seen, self.size
        pos = self._pos
        for event_id in self._pending:
            old = ring[pos]
            if old is not None:
                seen.discard(old)
            ring[pos] = event_id
            seen.add(event_id)
            pos += 1
            if pos == size:
                pos = 0
        self._pos = pos
        self._pending.clear()

    def rollback(self) -> None:
        """Forget the pending ids (the batch that marked them will be processed again)."""
        self._pending.clear()
