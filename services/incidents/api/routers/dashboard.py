"""``GET /dashboard``: the operator dashboard page, and ``GET /`` redirecting to it.

The page itself is public HTML and holds no data: its script calls the API with a bearer
token, so every figure shown passes the API's role checks. When the app was built with a
``dashboard_token`` (the demo), the page embeds it and works without a login; otherwise it
asks for a token and keeps it in the tab's ``sessionStorage``.

The script and style sheet are inlined from package files so the page is one response and
works offline (no CDN, no static-file route to authorise).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from services.incidents.api.context import Context
from services.incidents.event_feed import latest_id

router = APIRouter(include_in_schema=False)
ASSETS = Path(__file__).resolve().parent.parent / "dashboard"
# local time of the operators; ETRs and event times are shown in it
TIME_ZONE = "Asia/Shanghai"
# how many past lifecycle events the live feed shows when the page opens
FEED_BACKLOG = 30


@cache
def _environment() -> jinja2.Environment:
    # built on first use, not at import, so importing the router does no file I/O
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _asset(name: str) -> Markup:
    # our own files, inlined verbatim into <style> / <script>
    return Markup((ASSETS / name).read_text(encoding="utf-8"))  # noqa: S704


def render_dashboard(config: dict[str, Any]) -> str:
    """The page with ``config`` embedded as JSON (token, clock, feed start, time zone)."""
    template = _environment().get_template("dashboard.html.j2")
    return template.render(
        config=config, style=_asset("dashboard.css"), script=_asset("dashboard.js")
    )


@router.get("/", response_class=RedirectResponse)
async def root() -> RedirectResponse:
    """The dashboard is the front page."""
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, ctx: Context) -> HTMLResponse:
    """The operator dashboard (public page; its data needs a viewer token)."""
    latest = await latest_id(ctx.sessions)
    now = ctx.clock.now().astimezone(ZoneInfo(TIME_ZONE))
    config = {
        "token": request.app.state.dashboard_token,
        "now": now.isoformat(),
        "time_zone": TIME_ZONE,
        # report periods are whole local days: "…T00:00:00" + this offset
        "utc_offset": now.isoformat()[-6:],
        "feed_after": max(0, latest - FEED_BACKLOG),
    }
    return HTMLResponse(
        render_dashboard(config),
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
