"""Inline SVG charts for the HTML reports, built in Python (no JavaScript, no CDN).

Every chart is an ``<svg class="chart" data-chart="NAME">`` so pages and tests can find it;
colours come from CSS classes in the page so the charts print well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

WIDTH = 760
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 56


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _open(name: str, title: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(name)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{LEFT}" y="18">{escape(title)}</text>',
    ]


def _y_axis(parts: list[str], lo: float, hi: float, unit: str) -> None:
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(_fmt(value))}{escape(unit)}</text>')


def _scale(lo: float, hi: float) -> tuple[float, float]:
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def trend_svg(
    name: str,
    title: str,
    points: Sequence[tuple[str, float, bool]],
    threshold: float | None = None,
    unit: str = "",
) -> str:
    """A daily series (label, value, highlighted) with an optional dashed threshold line."""
    parts = _open(name, title)
    values = [v for _, v, _ in points]
    lo, hi = _scale(0.0, max([*values, threshold or 0.0, 0.0]) * 1.1)
    _y_axis(parts, lo, hi, unit)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(points) - 1)

    def y_of(v: float) -> float:
        return TOP + plot_h - (v - lo) / (hi - lo) * plot_h

    coords = [(LEFT + i * step, y_of(v)) for i, (_, v, _) in enumerate(points)]
    if coords:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline class="series" fill="none" points="{path}"/>')
    label_every = max(1, len(points) // 8)
    for i, ((label, value, marked), (x, y)) in enumerate(zip(points, coords, strict=True)):
        cls = "point marked" if marked else "point"
        parts.append(f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="{4 if marked else 2}">'
                     f"<title>{escape(label)}: {escape(_fmt(value))}{escape(unit)}</title>"
                     "</circle>")
        if i % label_every == 0:
            parts.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                         f'text-anchor="middle">{escape(label[5:])}</text>')
    if threshold is not None:
        y = y_of(threshold)
        parts.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="threshold-label" x="{WIDTH - RIGHT}" y="{y - 4:.1f}" '
                     f'text-anchor="end">T_MED {escape(_fmt(threshold))}{escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(
    name: str,
    title: str,
    bars: Sequence[tuple[str, float | None]],
    *,
    unit: str = "",
    floor: float = 0.0,
    ceiling: float | None = None,
    targets: Sequence[tuple[str, float]] = (),
) -> str:
    """Vertical bars (label, value; None drawn as 'n/a'), with optional target lines."""
    parts = _open(name, title)
    values = [v for _, v in bars if v is not None]
    top = ceiling if ceiling is not None else max([*values, *(t for _, t in targets), 0.0]) * 1.1
    lo, hi = _scale(floor, top)
    _y_axis(parts, lo, hi, unit)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(bars))
    width = min(60.0, slot * 0.7)
    for i, (label, value) in enumerate(bars):
        x = LEFT + i * slot + (slot - width) / 2
        cx = x + width / 2
        if value is None:
            parts.append(f'<text class="tick" x="{cx:.1f}" y="{TOP + plot_h - 4}" '
                         'text-anchor="middle">n/a</text>')
        else:
            clipped = min(max(value, lo), hi)
            h = (clipped - lo) / (hi - lo) * plot_h
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" '
                         f'width="{width:.1f}" height="{h:.1f}"><title>{escape(label)}: '
                         f"{escape(_fmt(value))}{escape(unit)}</title></rect>")
            parts.append(f'<text class="value" x="{cx:.1f}" y="{TOP + plot_h - h - 4:.1f}" '
                         f'text-anchor="middle">{escape(_fmt(value))}</text>')
        parts.append(f'<text class="tick" x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="middle">{escape(label[:14])}</text>')
    for label, target in targets:
        if lo <= target <= hi:
            y = TOP + plot_h - (target - lo) / (hi - lo) * plot_h
            parts.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
                         f'y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(f'<text class="threshold-label" x="{WIDTH - RIGHT}" y="{y - 4:.1f}" '
                         f'text-anchor="end">{escape(label)} {escape(_fmt(target))}'
                         f"{escape(unit)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def shares_svg(name: str, title: str, shares: Mapping[str, float]) -> str:
    """Horizontal bars of shares (0..1), largest first, labelled in percent."""
    items = sorted(shares.items(), key=lambda kv: -kv[1])
    row = 26
    height = TOP + row * max(1, len(items)) + 16
    parts = _open(name, title, height)
    label_w = 150
    plot_w = WIDTH - label_w - RIGHT - 60
    for i, (label, share) in enumerate(items):
        y = TOP + i * row
        w = max(0.0, min(1.0, share)) * plot_w
        parts.append(f'<text class="tick" x="{label_w - 8}" y="{y + 16}" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{w:.1f}" '
                     f'height="{row - 8}"><title>{escape(label)}: {share:.1%}</title></rect>')
        parts.append(f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 16}">'
                     f"{share:.1%}</text>")
    if not items:
        parts.append(f'<text class="tick" x="{LEFT}" y="{TOP + 16}">no data</text>')
    parts.append("</svg>")
    return "".join(parts)
