"""Reject NUL characters in the URL or a JSON body with a 422 problem.

PostgreSQL text cannot hold U+0000; without this guard such input reaches the database
and fails there as a 500. A pure ASGI middleware, so other bodies and streams pass through.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.incidents.api.problems import PROBLEM_MEDIA_TYPE, TYPE_BASE

MAX_BUFFERED = 4 * 1024 * 1024


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RejectNul:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        target = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in target or b"\x00" in target:
            await _reject(scope, send, "the URL contains a NUL character")
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self._app(scope, receive, send)
            return
        body, messages = b"", []
        more = True
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False) and len(body) <= MAX_BUFFERED
        if b"\\u0000" in body:
            try:
                nul = _has_nul(json.loads(body))
            except ValueError:
                nul = False  # not JSON: the route's own validation answers
            if nul:
                await _reject(scope, send, "the body contains a NUL character")
                return
        replay = iter(messages)

        async def replayed() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self._app(scope, replayed, send)


async def _reject(scope: Scope, send: Send, detail: str) -> None:
    body = json.dumps(
        {"type": TYPE_BASE + "invalid_request", "title": "Unprocessable Content", "status": 422,
         "detail": detail, "instance": scope.get("path"), "code": "invalid_request"}
    ).encode()  # fmt: skip
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})
