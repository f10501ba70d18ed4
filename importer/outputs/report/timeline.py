"""The report page's timeline: requests per second over the run, with retries, 429 answers
and failures marked, as inline SVG drawn from the :class:`~importer.models.Tick` list the request
engine recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from importer.models import Tick
from importer.outputs.report.page import _e, _n

TIMELINE_BARS = 600  #: at most this many bars; a longer run puts several seconds in a bar


def timeline_svg(ticks: Sequence[Tick]) -> str:
    """Requests per second as bars (retries in their lower part) under a line of the limiter's
    pace, with lanes of marks under the axis for the seconds that got 429 answers or failures.
    Pure; empty for no ticks."""
    if not ticks:
        return ""
    span = max(t.second for t in ticks) + 1
    per_bar = math.ceil(span / TIMELINE_BARS)
    bars = math.ceil(span / per_bar)
    requests, retries, throttled, failures = ([0] * bars for _ in range(4))
    for t in ticks:
        at = t.second // per_bar
        requests[at] += t.requests
        retries[at] += t.retries
        throttled[at] += t.throttled
        failures[at] += t.failures
    paces = [0.0] * bars
    for t in ticks:
        paces[t.second // per_bar] = max(paces[t.second // per_bar], t.pace)
    peak = max(max(requests) / per_bar, max(paces))
    top = _nice(peak)
    left, plot_w, plot_top, plot_h = 52.0, 720.0, 10.0, 150.0
    base = plot_top + plot_h
    width = plot_w / bars
    scale = plot_h / (top * per_bar)

    def path(values: list[int]) -> str:
        parts = []
        for i, value in enumerate(values):
            if value:
                height = value * scale
                parts.append(
                    f"M{left + i * width:.1f} {base:.1f}v{-height:.1f}h{width:.2f}V{base:.1f}z"
                )
        return "".join(parts)

    def pace_line() -> str:
        steps = [
            f"M{left + i * width:.1f} {base - p * per_bar * scale:.1f}h{width:.2f}"
            for i, p in enumerate(paces)
            if p
        ]
        return "".join(steps)

    def marks(values: list[int], lane: float) -> str:
        return "".join(
            f"M{left + (i + 0.5) * width:.1f} {lane - 4:.1f}l4 8h-8z"
            for i, v in enumerate(values)
            if v
        )

    end = span
    grid = "".join(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{base - plot_h * f:.1f}" '
        f'y2="{base - plot_h * f:.1f}" class="grid"/>'
        f'<text x="{left - 6}" y="{base - plot_h * f + 4:.1f}" class="ylabel">'
        f"{_tick_label(top * f)}</text>"
        for f in (0.0, 0.5, 1.0)
    )
    xlabels = "".join(
        f'<text x="{left + plot_w * f:.1f}" y="{base + 48}" class="xlabel">'
        f"{_duration(end * f)}</text>"
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    unit = "requests per second" + (f", averaged over {per_bar} s per bar" if per_bar > 1 else "")
    return (
        f'<svg class="timeline" viewBox="0 0 800 {base + 56:.0f}" role="img" '
        f'aria-labelledby="timeline-title" preserveAspectRatio="xMinYMin meet">'
        f'<title id="timeline-title">{_e(unit)} over the run</title>{grid}'
        f'<path class="requests" d="{path(requests)}"/>'
        f'<path class="retries" d="{path(retries)}"/>'
        f'<path class="pace" d="{pace_line()}"/>'
        f'<text x="{left - 6}" y="{base + 18}" class="ylabel">429</text>'
        f'<path class="throttled" d="{marks(throttled, base + 14)}"/>'
        f'<text x="{left - 6}" y="{base + 34}" class="ylabel">fail</text>'
        f'<path class="failures" d="{marks(failures, base + 30)}"/>'
        f"{xlabels}</svg>"
    )


def _timeline_section(ticks: Sequence[Tick]) -> str:
    total = sum(t.requests for t in ticks)
    busiest = max(ticks, key=lambda t: (t.requests, -t.second))
    throttled = sum(t.throttled for t in ticks)
    seconds_throttled = sum(1 for t in ticks if t.throttled)
    failures = sum(t.failures for t in ticks)
    retries = sum(t.retries for t in ticks)
    facts = (
        f"{_n(total)} requests; the busiest second was second {busiest.second} with "
        f"{_n(busiest.requests)}. {_n(retries)} retries, {_n(throttled)} answers 429 "
        f"(in {_n(seconds_throttled)} second{'s' if seconds_throttled != 1 else ''}), "
        f"{_n(failures)} failures (5xx, timeouts, lost connections)."
    )
    legend = (
        '<p class="legend"><span class="key requests"></span> requests '
        '<span class="key retries"></span> of which retries '
        '<span class="key pace"></span> the pace the limiter allowed '
        '<span class="key throttled"></span> a second with 429 answers '
        '<span class="key failures"></span> a second with failures</p>'
    )
    return (
        f'<section id="timeline"><h2>Requests over time</h2>{timeline_svg(ticks)}{legend}'
        f'<p class="facts">{facts}</p></section>'
    )


def _nice(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at least *value* (the axis' top)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _tick_label(value: float) -> str:
    return f"{value:g}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}:{rest:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d}"
