"""SMS through an HTTP gateway: POST ``{to, text, reference}`` as JSON or a form."""

from __future__ import annotations

from typing import Literal

import httpx

from services.notify.channels.base import (
    DeliveryResult,
    OutboundMessage,
    http_client,
    result_for_status,
    transport_error,
)


class SmsHttpChannel:
    name = "sms"

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        body_format: Literal["json", "form"] = "json",
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._url = url
        self._format = body_format
        self._headers: dict[str, str] = {}
        if api_key:
            self._headers[auth_header] = f"{auth_scheme} {api_key}" if auth_scheme else api_key
        self._owns_client = client is None
        self._client = client or http_client(timeout_s)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """2xx ok (provider id from ``id`` or ``message_id``); 429/5xx retryable; 4xx not."""
        fields = {"to": message.to, "text": message.body, "reference": message.idempotency_key}
        try:
            if self._format == "json":
                resp = await self._client.post(self._url, json=fields, headers=self._headers)
            else:
                resp = await self._client.post(self._url, data=fields, headers=self._headers)
        except httpx.HTTPError as exc:
            return transport_error(exc)
        return result_for_status(resp.status_code, resp.text, _provider_id(resp))

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_client:
            await self._client.aclose()


def _provider_id(resp: httpx.Response) -> str | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    if isinstance(data, dict):
        found = data.get("id") or data.get("message_id")
        return str(found) if found is not None else None
    return None
