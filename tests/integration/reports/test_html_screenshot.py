"""The HTML reports rendered by Debian's headless Chromium: screenshot and DOM checks."""

from __future__ import annotations

import math
import re
import struct
import subprocess
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from services.incidents.reports import (
    STATE_GRID_DEFAULTS,
    CustomerRecord,
    EtrErrorRecord,
    FirstNoticeRecord,
    IncidentImpactRecord,
    IncidentSlaRecord,
    InterruptionRecord,
    MomentaryEvent,
    Period,
    SagSwellCount,
    SaidiHistory,
    SurveyRecord,
    VoltageMinutes,
    reliability_report,
    render_html,
    satisfaction_report,
    sla_report,
    voltage_report,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 7, 1, tzinfo=CST)
PERIOD = Period(T0, T0 + timedelta(days=30))
FEEDERS = {"F01": ("S1", "urban"), "F02": ("S1", "urban"), "F03": ("S2", "rural"),
           "F04": ("S2", "rural"), "F05": ("S3", "remote")}
CHARTS = {"reliability": "saidi-trend", "sla": "sla-by-area", "voltage": "voltage-by-feeder",
          "satisfaction": "impact-components"}


def county_reports() -> dict[str, dict[str, Any]]:
    """A month in a small county: a typhoon on day 12, routine faults otherwise."""
    customers = [CustomerRecord(f"C{f}{i:03d}", f, *FEEDERS[f]) for f in FEEDERS
                 for i in range(200)]
    interruptions: list[InterruptionRecord] = []
    incidents: list[IncidentSlaRecord] = []
    for day in range(30):
        feeder = list(FEEDERS)[day % 5]
        sub, area = FEEDERS[feeder]
        start = T0 + timedelta(days=day, hours=3 + day % 11)
        affected = 120 if day == 11 else 5 + (day * 7) % 23
        minutes = 600 if day == 11 else 40 + (day * 37) % 180
        for i in range(affected):
            interruptions.append(InterruptionRecord(
                f"I{day:02d}", f"C{feeder}{i:03d}", start, start + timedelta(minutes=minutes),
                day % 9 == 4, False, feeder, sub, area))
        incidents.append(IncidentSlaRecord(
            f"I{day:02d}", area, "outage", start, start + timedelta(minutes=2 + day % 6),
            start + timedelta(minutes=20 + (day * 13) % 100), start + timedelta(minutes=minutes),
            start + timedelta(minutes=8 + day % 12)))
    momentaries = [MomentaryEvent(f"E{d}", f"CF01{i:03d}", T0 + timedelta(days=d, hours=1),
                                  "F01", "S1", "urban") for d in range(0, 30, 4) for i in range(30)]
    history = SaidiHistory({date(2024, 7, 1) + timedelta(days=i):
                            (0.0 if i % 4 == 0 else 0.3 + 2.5 * abs(math.sin(i * 0.7)))
                            for i in range(730)})
    volts = [VoltageMinutes(f"M{f}{i:03d}", f"T{f}{i // 20}", f, FEEDERS[f][1], 43200,
                            (i * 97 + len(f)) % (900 if FEEDERS[f][1] == "urban" else 2400),
                            FEEDERS[f][0]) for f in FEEDERS for i in range(60)]
    sags = [SagSwellCount("MF01000", "TF010", "F01", "urban", "sag", "instantaneous_sag", 7, "S1"),
            SagSwellCount("MF03000", "TF030", "F03", "rural", "swell", "momentary_swell", 2, "S2")]
    impacts = [IncidentImpactRecord(f"I{d:02d}", FEEDERS[list(FEEDERS)[d % 5]][1],
                                    T0 + timedelta(days=d, hours=4), 40.0 + (d * 53) % 400, 20,
                                    1000.0 + d * 50,
                                    {"duration": 20.0 + d, "breach": float(d % 7 * 5),
                                     "notice": 10.0, "etr_error": float(d % 5 * 4),
                                     "etr_slips": 3.0, "prior_12m": 6.0, "calls": 2.0})
               for d in range(30)]
    notices = [FirstNoticeRecord(f"I{d:02d}", f"C{d}", 5.0 + d % 17) for d in range(30)]
    etr = [EtrErrorRecord(f"I{d:02d}", ((d * 41) % 300) - 150, ["tree", "vehicle", None][d % 3])
           for d in range(30)]
    surveys = [SurveyRecord(f"I{d:02d}", f"C{d}", 1 + d % 5) for d in range(30)]
    return {
        "reliability": reliability_report(PERIOD, customers, interruptions, momentaries,
                                          group_by="feeder", history=history, tz=CST),
        "sla": sla_report(PERIOD, incidents, interruptions, STATE_GRID_DEFAULTS),
        "voltage": voltage_report(PERIOD, volts, sags, group_by="substation"),
        "satisfaction": satisfaction_report(PERIOD, impacts, notices, etr, surveys,
                                            calibration_r2=0.62),
    }


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.exists(), "headless Chromium missing: apt-get install -y chromium"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True,
                          timeout=120, check=True)


def png_size_and_colours(path: Path, rows: int = 300) -> tuple[int, int, int]:
    """(width, height, distinct colours in the first ``rows`` rows) of an 8-bit RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    assert colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(min(rows, height)):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        colours.update(bytes(line[i:i + bpp]) for i in range(0, stride, bpp * 7))
        prev = line
    return width, height, len(colours)


class TestScreenshot:
    @pytest.mark.parametrize("kind", list(CHARTS))
    def test_page_renders_to_a_real_image(self, kind: str, tmp_path: Path) -> None:
        page = tmp_path / f"{kind}.html"
        page.write_text(render_html(kind, county_reports()[kind]), encoding="utf-8")
        shot = tmp_path / f"{kind}.png"
        chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
        assert shot.exists()
        assert shot.stat().st_size > 20_000  # a blank 1280×2000 page compresses to a few KB
        width, height, colours = png_size_and_colours(shot)
        assert (width, height) == (1280, 2000)
        assert colours > 5  # text, rules and chart colours, not one flat colour


class TestDom:
    @pytest.mark.parametrize("kind", list(CHARTS))
    def test_charts_survive_rendering(self, kind: str, tmp_path: Path) -> None:
        page = tmp_path / f"{kind}.html"
        page.write_text(render_html(kind, county_reports()[kind]), encoding="utf-8")
        dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
        assert re.search(rf'<svg [^>]*class="chart" data-chart="{CHARTS[kind]}"', dom)
        assert "<table>" in dom
        if kind == "reliability":
            assert dom.count('class="point marked"') >= 1  # the typhoon day is a MED
            assert 'class="threshold"' in dom
