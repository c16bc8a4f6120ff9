"""Settings of the incidents service (``OUTAGEDESK_INCIDENTS_*`` on top of the common ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class IncidentsSettings(CommonSettings):
    incidents_group_id: str = "incidents"
    incidents_poll_timeout_s: float = Field(default=1.0, ge=0)
    # the timer loop also polls the stored wake-ups this often (other processes add timers)
    incidents_timer_poll_s: float = Field(default=1.0, gt=0)
    # Prefix for the signal, lifecycle and dead-letter topics: isolates a test run on a
    # shared broker. Empty in production (DESIGN's names).
    incidents_topic_prefix: str = ""
