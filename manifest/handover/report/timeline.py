"""The timeline figure (inline SVG): custody events in one lane per kind, and the files by
modification time, each on its own labelled time axis. Nothing is labelled per event, so the
picture stays readable at 5 events and at 5,000; tick labels are spaced by their width."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from manifest.handover.report.words import event_name

if TYPE_CHECKING:
    from collections.abc import Iterable

WIDTH = 800
FONT = 11
CHAR_W = 0.62 * FONT  # a generous width per character of the sans-serif labels
LANE_H = 20
BINS = 60
SECOND = 10**9

_STEPS_S = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
)
_MONTHS = (1, 2, 3, 6, 12, 24, 60, 120, 240, 600)


@dataclass(frozen=True)
class Axis:
    """A time axis from `lo` to `hi` (ns since the epoch) drawn over [x0, x1] pixels."""

    lo: int
    hi: int
    x0: float
    x1: float

    def x(self, t: int) -> float:
        return self.x0 + (t - self.lo) * (self.x1 - self.x0) / max(self.hi - self.lo, 1)


def _dt(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def _ns(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000


def _fmt(step_s: float, months: int) -> str:
    if months >= 12:
        return "%Y"
    if months:
        return "%Y-%m"
    if step_s >= 86400:
        return "%Y-%m-%d"
    if step_s >= 60:
        return "%H:%M"
    return "%H:%M:%S"


def ticks(lo: int, hi: int, width: float) -> tuple[list[tuple[int, str]], str]:
    """Tick times and labels for [lo, hi] that fit `width` pixels, and the axis title's extra
    words (the date, when the labels show only times of one day)."""
    span_s = max((hi - lo) / SECOND, 1)
    room = max(int(width // (CHAR_W * 11 + 16)), 2)  # labels are at most 10 characters
    out: list[tuple[int, str]] = []
    step = next((s for s in _STEPS_S if span_s / s <= room), None)
    if step is not None:
        fmt = _fmt(step, 0)
        first = -(-lo // (step * SECOND)) * step * SECOND
        out = [(t, _dt(t).strftime(fmt)) for t in range(first, hi + 1, step * SECOND)]
        day_lo, day_hi = _dt(lo).date(), _dt(hi).date()
        if step < 86400 and day_lo != day_hi:
            out = [(t, _dt(t).strftime("%m-%d %H:%M" if step >= 60 else "%d %H:%M:%S")) for t, _l in out]
        extra = f", {day_lo.isoformat()}" if step < 86400 and day_lo == day_hi else ""
        return out, extra
    months = next((m for m in _MONTHS if span_s / (m * 30.44 * 86400) <= room), _MONTHS[-1])
    start = _dt(lo)
    index = start.year * 12 + start.month - 1
    index = -(-index // months) * months
    while True:
        t = _ns(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC))
        if t > hi:
            break
        if t >= lo:
            out.append((t, _dt(t).strftime(_fmt(0, months))))
        index += months
    return out, ""


def _text(x: float, y: float, text: str, anchor: str = "middle", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT}"{extra}>'
        f"{escape(text)}</text>"
    )


def _x_axis(axis: Axis, y: float, title: str) -> list[str]:
    """The axis line, ticks whose labels do not touch each other, and the axis title."""
    marks, extra = ticks(axis.lo, axis.hi, axis.x1 - axis.x0)
    parts = [f'<line x1="{axis.x0}" y1="{y}" x2="{axis.x1}" y2="{y}" stroke="#333"/>']
    right_edge = -1e9
    for t, text in marks:
        x = axis.x(t)
        half = len(text) * CHAR_W / 2
        x_text = min(max(x, axis.x0 + half), axis.x1 - half)
        if x_text - half < right_edge + 8:
            continue
        right_edge = x_text + half
        parts.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#333"/>')
        parts.append(_text(x_text, y + 16, text, fill="#222"))
    parts.append(_text((axis.x0 + axis.x1) / 2, y + 34, title + extra, font_weight="bold", fill="#222"))
    return parts


def _span(times: list[int]) -> tuple[int, int]:
    lo, hi = min(times), max(times)
    pad = max((hi - lo) // 40, 30 * SECOND)
    return lo - pad, hi + pad


def custody_svg(events: Iterable[tuple[int, str, bool]]) -> str:
    """Custody events (time ns, kind, open transfer?) in one lane per kind."""
    marks = list(events)
    if not marks:
        return '<p class="muted">No custody event has a readable time.</p>'
    kinds: list[str] = []
    for _t, kind, _open in marks:
        if kind not in kinds:
            kinds.append(kind)
    names = [event_name(k) for k in kinds]
    left = 16 + max(len(n) for n in names) * CHAR_W
    right = 70
    top = 30
    height = top + LANE_H * len(kinds) + 50
    axis = Axis(*_span([t for t, _k, _o in marks]), left, WIDTH - right)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" class="figure" '
        f'role="img" aria-label="Custody events over time">',
        "<title>Custody events over time, one lane per kind of event</title>",
        _text(
            left, 14, "Custody events (one lane per kind; each dot is one event)", "start", font_weight="bold"
        ),
        _text(WIDTH - right + 8, 14, "events", "start", fill="#555"),
    ]
    if any(is_open for _t, _k, is_open in marks):
        y = top + LANE_H * len(kinds) + 30
        parts.append(
            f'<circle cx="{WIDTH - right - 118}" cy="{y - 4}" r="4" fill="#fff" stroke="#b00020" '
            'stroke-width="2"/>'
        )
        parts.append(_text(WIDTH - right - 108, y, "open transfer", "start", fill="#222"))
    counts = {k: 0 for k in kinds}
    for _t, kind, _open in marks:
        counts[kind] += 1
    for i, (kind, name) in enumerate(zip(kinds, names, strict=True)):
        lane_y = top + LANE_H * i + LANE_H / 2
        fill = "#f4f4f4" if i % 2 == 0 else "#ffffff"
        parts.append(
            f'<rect x="{left}" y="{lane_y - LANE_H / 2}" width="{axis.x1 - left}" height="{LANE_H}" '
            f'fill="{fill}"/>'
        )
        parts.append(_text(left - 8, lane_y + 4, name, "end", fill="#222"))
        parts.append(_text(WIDTH - right + 8, lane_y + 4, str(counts[kind]), "start", fill="#555"))
    for t, kind, is_open in marks:
        dot_y = top + LANE_H * kinds.index(kind) + LANE_H / 2
        style = (
            'fill="#fff" stroke="#b00020" stroke-width="2"'
            if is_open
            else 'fill="#b00020" fill-opacity="0.75"'
        )
        parts.append(f'<circle cx="{axis.x(t):.1f}" cy="{dot_y:.1f}" r="4" {style}/>')
    parts += _x_axis(axis, top + LANE_H * len(kinds), "Time (UTC)")
    parts.append("</svg>")
    return "".join(parts)


def files_svg(lo: int | None, hi: int | None, bins: list[int]) -> str:
    """Files by modification time: a histogram with a count axis and a time axis."""
    if lo is None or hi is None or not any(bins):
        return '<p class="muted">No collected file has a modification time.</p>'
    left, right, top, plot_h = 60, 70, 30, 120
    if hi - lo < 60 * SECOND:
        lo, hi = lo - 30 * SECOND, hi + 30 * SECOND
    axis = Axis(lo, hi, left, WIDTH - right)
    peak = max(bins)
    base = top + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {base + 50}" class="figure" '
        'role="img" aria-label="Files by modification time">',
        "<title>Collected files by their modification time</title>",
        _text(
            left, 14, f"Files by modification time ({len(bins)} equal intervals)", "start", font_weight="bold"
        ),
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#333"/>',
    ]
    for value in sorted({0, peak}):
        y = base - value * plot_h / peak
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#333"/>')
        parts.append(_text(left - 8, y + 4, str(value), "end", fill="#222"))
    parts.append(
        f'<text x="16" y="{(top + base) / 2:.1f}" text-anchor="middle" font-size="{FONT}" font-weight="bold" '
        f'transform="rotate(-90 16 {(top + base) / 2:.1f})">files</text>'
    )
    span = hi - lo
    for i, count in enumerate(bins):
        if not count:
            continue
        x0, x1 = axis.x(lo + span * i // len(bins)), axis.x(lo + span * (i + 1) // len(bins))
        h = max(count * plot_h / peak, 1.5)
        parts.append(
            f'<rect x="{x0:.1f}" y="{base - h:.1f}" width="{max(x1 - x0 - 1, 1.5):.1f}" height="{h:.1f}" '
            f'fill="#4a78b5"><title>{count} file(s)</title></rect>'
        )
    parts += _x_axis(axis, base, "Modification time (UTC)")
    parts.append("</svg>")
    return "".join(parts)


def histogram(times: Iterable[int], lo: int, hi: int, n: int = BINS) -> list[int]:
    bins = [0] * n
    span = max(hi - lo, 1)
    for t in times:
        bins[min(max((t - lo) * n // span, 0), n - 1)] += 1
    return bins
