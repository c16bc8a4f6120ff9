"""A local HTTP SMS gateway for the stack runs: ``python gateway.py PORT``.

``POST /sms`` with ``{to, text, reference}`` answers 200 with a provider id and records
the reference and its arrival time; ``GET /sms`` answers the totals, and with
``?detail=1`` every reference with its arrival times (so duplicates can be dated).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson


def gateway_app() -> Any:
    refs: dict[str, list[float]] = {}
    received = [0]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            payload: dict[str, Any] = {
                "received": received[0],
                "distinct": len(refs),
                "duplicated": sum(1 for t in refs.values() if len(t) > 1),
            }
            if b"detail=1" in scope.get("query_string", b""):
                payload["refs"] = refs
        else:
            ref = orjson.loads(body)["reference"]
            refs.setdefault(ref, []).append(time.time())
            received[0] += 1
            payload = {"id": str(received[0])}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": orjson.dumps(payload)})

    return app


def main() -> None:
    import uvicorn

    uvicorn.run(gateway_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
