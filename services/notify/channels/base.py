"""The channel port: one interface for SMTP, the SMS gateway, WeChat, webhooks and a file.

``send`` never raises for a delivery problem: it answers a :class:`DeliveryResult` that
says whether the gateway accepted the message and, if not, whether trying again later can
help (network errors, 429, 5xx) or not (bad address, rejected content).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from services.notify.channels.keepalive import KeepAliveTransport


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    channel: str  # sms | wechat | email | webhook: the customer's chosen channel
    to: str  # phone, WeChat openid, e-mail address or webhook URL
    subject: str
    body: str
    customer_id: str
    incident_id: str
    stage: str
    language: str
    idempotency_key: str  # "incident_id:customer_id:stage:revision"; gateways may dedupe on it


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    retryable: bool = False
    provider_id: str | None = None
    error: str | None = None


class Channel(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Hand one message to the gateway and classify its answer."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def result_for_status(status: int, text: str, provider_id: str | None = None) -> DeliveryResult:
    """2xx ok; 408, 425, 429 and 5xx retryable; any other status permanent."""
    if 200 <= status < 300:
        return DeliveryResult(ok=True, provider_id=provider_id)
    retryable = status in (408, 425, 429) or status >= 500
    return DeliveryResult(ok=False, retryable=retryable, error=f"http {status}: {text[:200]}")


def transport_error(exc: Exception) -> DeliveryResult:
    """A network failure (refused, reset, timeout): the gateway may be back later."""
    return DeliveryResult(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}"[:300])


def http_client(timeout_s: float, *, max_connections: int = 64) -> httpx.AsyncClient:
    """The HTTP channels' client, on the lean keep-alive transport (see
    :mod:`services.notify.channels.keepalive`: httpcore cost more CPU per message than the
    rest of the sender). Idle keep-alive connections are dropped after 2 s, before common
    gateways close theirs (uvicorn and Apache after 5 s): reusing one the server is closing
    fails the send with a ReadError and costs the customer a retry minutes later."""
    transport = KeepAliveTransport(max_connections=max_connections, keepalive_expiry=2.0)
    return httpx.AsyncClient(timeout=timeout_s, transport=transport)
