"""Settings of ``outagedesk serve notify``: the gateway settings plus the service's own."""

from __future__ import annotations

from pydantic import Field

from services.notify.settings import NotifySettings


class NotifyServiceSettings(NotifySettings):
    notify_host: str = "127.0.0.1"
    notify_port: int = Field(default=8001, ge=0, le=65535)  # 0: no HTTP server
    notify_group_id: str = "notify"
    notify_poll_timeout_s: float = Field(default=1.0, ge=0)
    notify_sender_batch: int = Field(default=200, ge=1)
    notify_sender_concurrency: int = Field(default=32, ge=1)
    notify_lease_s: float = Field(default=120.0, gt=0)  # a claimed job is re-sent after this
    notify_idle_poll_s: float = Field(default=1.0, gt=0)  # sender wake-up when nothing is due
    # pacing grid of rate-limited jobs: a coarser grid means fewer, larger sender rounds
    notify_sender_round_s: float = Field(default=0.1, gt=0)
    # sender rounds in flight at once: the next is claimed while the last is sending
    notify_sender_pipeline: int = Field(default=8, ge=1)
    # true only when this is the one notify process on its database: it then keeps its
    # decision state in memory between batches instead of reading it back for each batch
    # (a second process writing the schema would make that state stale; see deploy/)
    notify_single_replica: bool = False
    # critical customers are also posted here (signed like webhooks) when set
    notify_operators_webhook_url: str | None = None
