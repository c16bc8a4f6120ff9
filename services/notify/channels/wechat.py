"""WeChat official-account template messages.

Token: GET ``{base_url}/cgi-bin/token?grant_type=client_credential&appid=…&secret=…`` →
``{"access_token", "expires_in"}``, cached until 5 minutes before it expires (by the
injected clock). Send: POST ``{base_url}/cgi-bin/message/template/send?access_token=…``
with ``{"touser", "template_id", "data"}``; ``errcode`` 0 is success. An expired or invalid
token (40001, 40014, 42001) is refreshed and the send tried once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from services.common.clock import Clock
from services.notify.channels.base import (
    DeliveryResult,
    OutboundMessage,
    http_client,
    result_for_status,
    transport_error,
)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# -1 system busy, 45009 daily API quota, 45047 too many messages to one user
RETRYABLE_ERRORS = frozenset({-1, 45009, 45047})
TOKEN_MARGIN = timedelta(minutes=5)


class WeChatError(Exception):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.error)
        self.result = result


class WeChatChannel:
    name = "wechat"

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        template_ids: Mapping[str, str],
        clock: Clock,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._app_id, self._secret = app_id, app_secret
        self._templates = dict(template_ids)
        self._clock = clock
        self._token: tuple[str, datetime] | None = None
        self._token_lock = asyncio.Lock()
        self._owns_client = client is None
        self._client = client or http_client(timeout_s)

    async def access_token(self, *, refresh: bool = False) -> str:
        """The cached access token, fetched again when missing, expiring or ``refresh``."""
        async with self._token_lock:
            if not refresh and self._token and self._clock.now() < self._token[1]:
                return self._token[0]
            resp = await self._client.get(
                f"{self._base}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self._app_id,
                        "secret": self._secret},
            )  # fmt: skip
            if resp.status_code != 200:
                raise WeChatError(result_for_status(resp.status_code, resp.text))
            data = resp.json()
            if "access_token" not in data:
                code = int(data.get("errcode", 0))
                raise WeChatError(_errcode_result(code, data.get("errmsg")))
            expires = self._clock.now() + timedelta(seconds=int(data.get("expires_in", 7200)))
            self._token = (str(data["access_token"]), expires - TOKEN_MARGIN)
            return self._token[0]

    def payload(self, message: OutboundMessage) -> dict[str, Any] | None:
        """The template-message body, or ``None`` when no template serves the stage."""
        template_id = self._templates.get(message.stage) or self._templates.get("default")
        if not template_id:
            return None
        return {
            "touser": message.to,
            "template_id": template_id,
            "data": {
                "first": {"value": message.subject},
                "content": {"value": message.body},
                "remark": {"value": message.idempotency_key.split(":")[0][-6:].upper()},
            },
        }

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send once, refreshing the token and retrying once when WeChat rejects it."""
        payload = self.payload(message)
        if payload is None:
            return DeliveryResult(ok=False, error=f"no WeChat template for {message.stage}")
        try:
            result, code = await self._post(payload, refresh=False)
            if code in TOKEN_ERRORS:
                result, code = await self._post(payload, refresh=True)
        except WeChatError as exc:
            return exc.result
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a garbled JSON answer
            return transport_error(exc)
        return result

    async def _post(self, payload: dict[str, Any], *, refresh: bool) -> tuple[DeliveryResult, int]:
        token = await self.access_token(refresh=refresh)
        resp = await self._client.post(
            f"{self._base}/cgi-bin/message/template/send",
            params={"access_token": token},
            json=payload,
        )
        if resp.status_code != 200:
            return result_for_status(resp.status_code, resp.text), 0
        data = resp.json()
        code = int(data.get("errcode", 0))
        if code == 0:
            msgid = data.get("msgid")
            return DeliveryResult(ok=True, provider_id=str(msgid) if msgid else None), 0
        return _errcode_result(code, data.get("errmsg")), code

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_client:
            await self._client.aclose()


def _errcode_result(code: int, errmsg: Any) -> DeliveryResult:
    retryable = code in RETRYABLE_ERRORS or code in TOKEN_ERRORS
    return DeliveryResult(ok=False, retryable=retryable, error=f"wechat {code}: {errmsg}")
