"""Settings of the ingest service (``OUTAGEDESK_INGEST_*`` on top of the common ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class IngestSettings(CommonSettings):
    ingest_metrics_port: int = Field(default=9101, ge=0, le=65535)  # 0: no HTTP endpoint
    ingest_metrics_host: str = "127.0.0.1"
    ingest_dedup_window: int = Field(default=200_000, ge=1)
    ingest_group_id: str = "ingest"
    ingest_poll_timeout_s: float = Field(default=1.0, ge=0)
    # The broker's long poll on quiet raw topics (Kafka's default is 500 ms). The consumer
    # loop asks for the lag after every batch, and that request queues behind the poll on
    # the same connection: with a quiet device or customer topic, every batch waited
    # ~250 ms on average. An idle poll every 20 ms costs the broker next to nothing.
    ingest_fetch_max_wait_ms: int = Field(default=20, ge=0, le=500)
    # Prefix for the raw, signal and dead-letter topics: isolates a benchmark or test run
    # on a shared broker. Empty in production (DESIGN's names).
    ingest_topic_prefix: str = ""
