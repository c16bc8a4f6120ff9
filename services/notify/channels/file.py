"""The demo's channel: one JSON object per line in a file instead of a gateway.

Each line is ``{"customer_id", "incident_id", "stage", "channel", "language", "to", "body",
"sent_at"}`` (DESIGN section 14). A line is written with a single ``write`` on an
``O_APPEND`` descriptor and fsynced before ``send`` returns, so concurrent senders never
interleave lines and a message reported sent is on disk.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

from services.common.clock import Clock
from services.notify.channels.base import DeliveryResult, OutboundMessage, transport_error


class FileChannel:
    name = "file"

    def __init__(self, path: Path, clock: Clock) -> None:
        self._path = path
        self._clock = clock
        self._lock = asyncio.Lock()

    def line(self, message: OutboundMessage) -> bytes:
        """The JSON line recorded for ``message``."""
        record = {
            "customer_id": message.customer_id,
            "incident_id": message.incident_id,
            "stage": message.stage,
            "channel": message.channel,
            "language": message.language,
            "to": message.to,
            "body": message.body,
            "sent_at": self._clock.now().isoformat(),
        }
        return orjson.dumps(record) + b"\n"

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Append the line durably; a disk error is retryable."""
        data = self.line(message)
        try:
            async with self._lock:
                await asyncio.to_thread(self._append, data)
        except OSError as exc:
            return transport_error(exc)
        return DeliveryResult(ok=True, provider_id=message.idempotency_key)

    def _append(self, data: bytes) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # O_APPEND writes of a line are whole in practice
                raise OSError(f"short write to {self._path}: {written} of {len(data)}")
            os.fsync(fd)
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        """Nothing held open between messages."""
