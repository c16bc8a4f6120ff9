"""The demo's channel: one JSON object per line in a file instead of a gateway.

Each line is ``{"customer_id", "incident_id", "stage", "channel", "language", "to", "body",
"sent_at"}`` (DESIGN section 14). Lines are written with a single ``write`` on an
``O_APPEND`` descriptor and fsynced before ``send`` returns, so concurrent senders never
interleave lines and a message reported sent is on disk. Group commit: the lines of sends
that arrive while a write is in flight go together in the next write and fsync, in the
order ``send`` was called.
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
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

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
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((self.line(message), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        try:
            await done
        except OSError as exc:
            return transport_error(exc)
        return DeliveryResult(ok=True, provider_id=message.idempotency_key)

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            # Whatever stops the write, no send is left waiting.
            error: OSError | None = OSError(f"writing {self._path} was interrupted")
            try:
                await asyncio.to_thread(self._append, b"".join(data for data, _ in batch))
                error = None
            except OSError as exc:
                error = exc
            finally:
                for _, done in batch:
                    if done.done():
                        continue
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)

    def _append(self, data: bytes) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # O_APPEND writes of lines are whole in practice
                raise OSError(f"short write to {self._path}: {written} of {len(data)}")
            os.fsync(fd)
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        """Nothing held open between messages."""
