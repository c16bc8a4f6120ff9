"""Settings of the incidents service (``OUTAGEDESK_INCIDENTS_*`` on top of the common ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class IncidentsSettings(CommonSettings):
    incidents_group_id: str = "incidents"
    incidents_poll_timeout_s: float = Field(default=1.0, ge=0)
    # the timer loop also polls the stored wake-ups this often (other processes add timers)
    incidents_timer_poll_s: float = Field(default=1.0, gt=0)
    # Timers (dwell, confirmation, nested check, SLA deadlines) due at T wait until the
    # signals consumer has applied everything that was in Kafka at T, so rules judge on the
    # evidence that had arrived, not on a backlog's head. Safety valve: a timer held this
    # long past its due time fires anyway (a never-ending backlog must not starve timers).
    # 0 = no hold (fire on the clock alone).
    incidents_timer_max_hold_s: float = Field(default=300.0, ge=0)
    # A restored incident's impact is re-recorded at most this often while late evidence and
    # first notices keep changing it (each record rewrites all its customers' rows); its
    # restoration and close are recorded at once.
    incidents_impact_refresh_s: float = Field(default=300.0, ge=0)
    # Prefix for the signal, lifecycle and dead-letter topics: isolates a test run on a
    # shared broker. Empty in production (DESIGN's names).
    incidents_topic_prefix: str = ""
