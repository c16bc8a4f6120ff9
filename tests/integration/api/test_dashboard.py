"""The operator dashboard page in headless Chromium over a database the demo filled.

The demo pipeline replays a small generated county up to the night of the typhoon (open
outages, a nested one, breached and met SLA targets), then the API serves it on a free port
and Debian's Chromium renders ``/dashboard``: the page's script must fetch the incidents,
feeders and the SSE backlog with the embedded token and draw them.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.common.clock import VirtualClock
from services.common.db import create_engine, session_factory
from services.demo.bundle import generate, scenario_bytes, topology_bytes
from services.demo.runner import DemoOptions, run_demo
from services.incidents import repository
from services.incidents.api.app import create_app
from services.incidents.api.auth import create_token
from services.incidents.api.settings import ApiSettings

CHROMIUM = "/usr/bin/chromium"
SECRET = "dashboard-test-secret-0123456789abcdef"
# the night of day one: the nested outage under the restored breaker and storm fuses are open
UNTIL = datetime.fromisoformat("2026-07-15T01:20:00+08:00")
OPEN = ["detected", "confirmed", "dispatched", "on_site", "scheduled", "in_progress"]


@dataclass
class Seeded:
    url: str
    open_incidents: list[dict[str, Any]]
    feeders: set[str]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A SQLite database filled by the demo pipeline on a 3,000-customer county."""
    root = tmp_path_factory.mktemp("dashboard")
    topology, scenario = generate(customers=3000)
    (root / "topology.json").write_bytes(topology_bytes(topology))
    (root / "scenario.jsonl").write_bytes(scenario_bytes(scenario))
    url = f"sqlite+aiosqlite:///{root / 'demo.db'}"
    options = DemoOptions(
        topology=root / "topology.json", scenario=root / "scenario.jsonl", serve=False,
        database_url=url, until=UNTIL, messages=root / "messages.jsonl", progress=False,
    )  # fmt: skip
    assert asyncio.run(run_demo(options)) == 0
    return Seeded(url, asyncio.run(_open_incidents(url)), {f["id"] for f in topology["feeders"]})


async def _open_incidents(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            page = await repository.list_incidents(
                session, repository.IncidentFilters(status=OPEN), None, 10_000
            )
        return page.items
    finally:
        await engine.dispose()


@dataclass
class Served:
    base: str
    token: str
    server: uvicorn.Server | None = None
    errors: list[BaseException] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(seeded: Seeded, *, embed: bool) -> Iterator[Served]:
    """The API on a free port in a thread of its own (its own event loop and engine)."""
    token = create_token(SECRET, "dashboard-test", ["viewer"], now=datetime.now(UTC))
    served = Served(base=f"http://127.0.0.1:{_free_port()}", token=token)
    ready = threading.Event()

    async def main() -> None:
        engine = create_engine(seeded.url)
        try:
            settings = ApiSettings(database_url=seeded.url, jwt_secret=SECRET)
            app = create_app(
                settings, session_factory(engine), None, VirtualClock(UNTIL),
                sse_poll_s=0.1, dashboard_token=token if embed else None,
            )  # fmt: skip
            port = int(served.base.rsplit(":", 1)[1])
            config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
            served.server = uvicorn.Server(config)
            ready.set()
            await served.server.serve()
        finally:
            await engine.dispose()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            served.errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the server thread did not start"
    for _ in range(300):
        if served.errors or (served.server is not None and served.server.started):
            break
        threading.Event().wait(0.05)
    assert served.errors == []
    assert served.server is not None
    assert served.server.started
    try:
        yield served
    finally:
        served.server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def served(seeded: Seeded) -> Iterator[Served]:
    yield from _serve(seeded, embed=True)


@pytest.fixture(scope="module")
def served_without_token(seeded: Seeded) -> Iterator[Served]:
    yield from _serve(seeded, embed=False)


def _chromium(url: str, tmp: Path, *extra: str) -> str:
    assert shutil.which(CHROMIUM), "Debian's chromium is needed for the browser tests"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=8000",
        "--window-size=1400,1100", *extra, url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Dom(HTMLParser):
    """What the assertions need from the dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}  # incident id → status, rows of the feeder tree
        self.chips: list[str] = []
        self.events: list[str] = []  # incident ids of the live feed's entries
        self.counts: dict[str, str] = {}
        self.hidden_token_form: bool | None = None
        self._count: str | None = None
        self._value = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-incident-id"):
            self.rows[a["data-incident-id"] or ""] = a.get("data-status") or ""
        if tag == "span" and a.get("data-sla"):
            self.chips.append(a["data-sla"] or "")
        if tag == "li" and a.get("data-event-id"):
            self.events.append(a.get("data-incident-id") or "")
        if tag == "form" and a.get("id") == "token-form":
            self.hidden_token_form = "hidden" in a
        if tag == "div" and a.get("data-count"):
            self._count = a["data-count"]
        self._value = tag == "div" and a.get("class") == "value" and self._count is not None

    def handle_data(self, data: str) -> None:
        if self._value and self._count is not None:
            self.counts[self._count] = data.strip()
            self._count, self._value = None, False


def _parse(html: str) -> _Dom:
    dom = _Dom()
    dom.feed(html)
    return dom


@pytest.mark.browser
class TestDashboardInChromium:
    def test_shows_every_open_incident_with_sla_chips_and_the_feed(
        self, seeded: Seeded, served: Served, tmp_path: Path
    ) -> None:
        assert len(seeded.open_incidents) >= 2, "the seed should leave incidents open"
        dom = _parse(_chromium(f"{served.base}/", tmp_path, "--dump-dom"))
        assert dom.rows == {i["id"]: i["status"] for i in seeded.open_incidents}
        wanted = {s for i in seeded.open_incidents for s in (i.get("sla") or {}).values()}
        assert wanted
        assert wanted <= set(dom.chips)
        out = sum(i["customers_out"] for i in seeded.open_incidents if i["kind"] != "voltage")
        assert dom.counts["customers out"] == f"{out:,}"
        assert dom.counts["open incidents"] == str(len(seeded.open_incidents))
        # the SSE backlog arrived through fetch() streaming with the bearer header
        assert dom.events
        assert all(dom.events)
        assert dom.hidden_token_form is True

    def test_screenshot_renders(self, served: Served, tmp_path: Path) -> None:
        shot = tmp_path / "dashboard.png"
        _chromium(f"{served.base}/dashboard", tmp_path, f"--screenshot={shot}")
        assert shot.stat().st_size > 20_000  # a blank page is a few kB
        keep = Path("/tmp/outagedesk-dashboard.png")
        keep.write_bytes(shot.read_bytes())  # for a person to look at

    def test_without_an_embedded_token_it_asks_for_one(
        self, served_without_token: Served, tmp_path: Path
    ) -> None:
        dom = _parse(_chromium(f"{served_without_token.base}/dashboard", tmp_path, "--dump-dom"))
        assert dom.hidden_token_form is False
        assert dom.rows == {}


class TestDashboardHttp:
    def test_page_embeds_the_token_only_when_given(
        self, served: Served, served_without_token: Served
    ) -> None:
        with_token = httpx.get(f"{served.base}/dashboard")
        without = httpx.get(f"{served_without_token.base}/dashboard")
        assert with_token.status_code == without.status_code == 200
        assert served.token in with_token.text
        assert served_without_token.token not in without.text
        assert '"token": null' in without.text
        assert with_token.headers["cache-control"] == "no-store"

    def test_root_redirects_to_the_dashboard(self, served: Served) -> None:
        r = httpx.get(f"{served.base}/")
        assert r.status_code == 307
        assert r.headers["location"] == "/dashboard"

    def test_feeders_lists_the_topology(self, seeded: Seeded, served: Served) -> None:
        r = httpx.get(f"{served.base}/api/v1/feeders",
                      headers={"Authorization": f"Bearer {served.token}"})  # fmt: skip
        assert r.status_code == 200
        items = r.json()["items"]
        assert {f["id"] for f in items} == seeded.feeders
        assert all(f["name"] and f["substation"] and f["area"] for f in items)
        assert httpx.get(f"{served.base}/api/v1/feeders").status_code == 401
