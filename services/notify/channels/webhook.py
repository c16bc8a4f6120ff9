"""Signed webhooks: POST JSON with an HMAC-SHA256 signature receivers can verify.

Headers: ``X-OutageDesk-Timestamp`` (Unix seconds) and ``X-OutageDesk-Signature``, the hex
HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with the webhook secret. Receivers call
:func:`verify_signature` and should reject stale timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import orjson

from services.common.clock import Clock
from services.notify.channels.base import (
    DeliveryResult,
    OutboundMessage,
    http_client,
    result_for_status,
    transport_error,
)

TIMESTAMP_HEADER = "X-OutageDesk-Timestamp"
SIGNATURE_HEADER = "X-OutageDesk-Signature"


def sign(secret: str, timestamp: str, body: str) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: str | bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """True when ``signature`` matches and ``timestamp`` is within ``tolerance_s`` of now."""
    text = body.decode() if isinstance(body, bytes) else body
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, text), signature)


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        secret: str,
        clock: Clock,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._owns_client = client is None
        self._client = client or http_client(timeout_s)

    def payload(self, message: OutboundMessage) -> str:
        """The JSON body posted for ``message``."""
        return orjson.dumps(
            {
                "idempotency_key": message.idempotency_key,
                "customer_id": message.customer_id,
                "incident_id": message.incident_id,
                "stage": message.stage,
                "language": message.language,
                "subject": message.subject,
                "body": message.body,
                "sent_at": self._clock.now().isoformat(),
            }
        ).decode()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST to ``message.to``; 2xx ok, 429/5xx retryable, other 4xx permanent."""
        body = self.payload(message)
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            resp = await self._client.post(message.to, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return transport_error(exc)
        return result_for_status(resp.status_code, resp.text)

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_client:
            await self._client.aclose()
