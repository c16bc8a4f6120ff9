"""Skip timer runs that cannot fire anything, when this process is the database's only
writer (the demo).

The demo asks :meth:`IncidentsService.run_due` after every batch it consumed, about 1,300
times a replay; nearly all of those find nothing due and re-read the same wake-up, at half a
dozen statements each. Everything a timer run fires or returns is read from the correlator's
timers (a feeder's stored wake-up is the earliest of its timers, rewritten with every batch
but changed only with them) and the SLA deadlines, plus the impact recorder's pending
refreshes, which it keeps in memory. While no statement has written one of
those tables since the last full run, and neither that run's wake-up nor a refresh has come,
a run would fire nothing and return the same wake-up: the service returns it without one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

TIMER_TABLES = ("incidents.correlator_timers", "incidents.sla_deadlines")


class TimerWatch:
    """Watches the engine's statements for writes to :data:`TIMER_TABLES`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.written = True  # nothing known yet: the first run is a full one
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Any statement naming a table but a plain SELECT counts: too many is only a full run.
        if not self.written and not statement.startswith("SELECT") and any(
            table in statement for table in TIMER_TABLES
        ):
            self.written = True

    def begin_run(self) -> None:
        """A full run starts: writes from here on (its own included) count for the next."""
        self.written = False

    def idle(self, now: datetime, wake: datetime | None, refresh: datetime | None) -> bool:
        """True when a run at ``now`` would fire nothing and return ``wake`` again (the last
        full run's wake-up; ``refresh`` is the impact recorder's earliest pending one)."""
        return not self.written and all(t is None or t > now for t in (wake, refresh))
