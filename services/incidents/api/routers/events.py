"""``GET /api/v1/events``: Server-Sent Events of lifecycle events (viewer).

Each event's ``id`` is its outbox id; reconnecting with ``Last-Event-ID`` resumes after it.
Without it the feed starts at the newest event (``after=0`` replays from the beginning).
The outbox is polled every ``sse_poll_s``; a comment line every ``sse_heartbeat_s`` keeps
proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.incidents.api.auth import Viewer
from services.incidents.api.context import ApiContext, Context
from services.incidents.api.problems import ApiProblem, problem_responses
from services.incidents.event_feed import EventFeed, latest_id

router = APIRouter(prefix="/api/v1", tags=["events"])
_EXAMPLE = (
    'id: 42\nevent: crew_assigned\ndata: {"event_id": "INC-1:3", "incident_id": "INC-1", '
    '"seq": 3, "type": "crew_assigned", ...}\n\n'
)


async def _stream(request: Request, ctx: ApiContext, feed: EventFeed) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        events = await feed.poll()
        for event in events:
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), event.data)
        if events:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= ctx.sse_heartbeat_s:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(ctx.sse_poll_s)


@router.get(
    "/events",
    summary="Live lifecycle events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream`; `id` is the outbox id",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        },
        **problem_responses(401, 403, 422),
    },
)
async def events(
    request: Request,
    ctx: Context,
    _principal: Viewer,
    feeder: Annotated[str | None, Query(description="Only this feeder's incidents")] = None,
    area: Annotated[str | None, Query(description="Only incidents in this area")] = None,
    after: Annotated[
        int | None, Query(ge=0, description="Start after this event id (0: from the start)")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event id")
    ] = None,
) -> StreamingResponse:
    """Stream ``incidents.lifecycle.v1`` events as they are committed, in id order."""
    start: int
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            raise ApiProblem(422, "invalid_request", "Last-Event-ID must be an event id")
        start = int(last_event_id.strip())
    elif after is not None:
        start = after
    else:
        start = await latest_id(ctx.sessions)
    feed = EventFeed(ctx.sessions, start, feeder=feeder, area=area)
    return StreamingResponse(
        _stream(request, ctx, feed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
