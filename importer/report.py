"""The report page of a run (``--html FILE``): what a person reads after `run`, `validate`,
`undo` or `audit`.

One self-contained HTML file: no script at all, the style inline, no font, image or anything else
loaded from anywhere (a Content-Security-Policy of ``default-src 'none'`` says so to the browser
too), light and printable. It shows:

- the count of result lines per status, for every status present;
- the refused rows (`invalid`), grouped by issue code, with the row numbers and the fix a
  marketer should make (:data:`ISSUES`; a generic fix for a code this module does not know);
- every other status whose lines carry a message (the API's rejections, failures, codes kept by
  `undo`, changes found by `audit`), grouped by message;
- for runs that sent requests, a timeline of requests per second with retries, 429 answers and
  failures marked: inline SVG drawn from the :class:`Tick` list the request engine recorded.

Every value that comes from the spreadsheet, the API or the summary is HTML-escaped, so a cell
holding ``<script>`` shows as text. Lists are capped (row numbers, examples, messages) with
"and N more", so a million-row run still gives a page of a few hundred kilobytes at most.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from importer.models import Tick
from importer.reconcile import Cells, atomic_write


@dataclass(frozen=True)
class RunReport:
    """Everything the page shows, gathered by the command that ran.

    `lines` are the result lines (:class:`~importer.models.ResultLine`, or plain tuples in its
    field order); `status` may be any text (`undo`: deleted/kept, `audit`: available, redeemed,
    ...). Every line, or only those the page lists (see :func:`collect_listed`, which keeps a
    million-line run from holding every line in memory): the counts come from
    ``summary["counts"]``, which counts the whole results file, and from `lines` for a status
    the summary does not count. `summary` is :meth:`importer.context.Summary.as_dict`; only
    its known figures are shown, so a key added to it later never reaches the page unseen.
    """

    command: str
    input: str
    started: str
    summary: Mapping[str, Any]
    lines: Sequence[Cells]
    timeline: Sequence[Tick] = ()


class Reason(NamedTuple):
    """What a refused row's issue code means, and what the marketer should change."""

    title: str
    fix: str


#: Every issue code of :mod:`importer.validate`, with its fix in a marketer's words.
ISSUES: Mapping[str, Reason] = MappingProxyType(
    {
        "bad-code": Reason(
            "The code has characters that are not allowed",
            "Use only letters, digits, - and _ in the code: remove spaces, accents and "
            "punctuation. Or empty the cell to have a code generated.",
        ),
        "code-too-long": Reason(
            "The code is too long",
            "Shorten the code to the limit the message gives (64 characters unless configured).",
        ),
        "duplicate-code": Reason(
            "The code appears more than once",
            "Each code may appear once, capitals or not: delete the repeated row or give it "
            "another code. The first row with the code is kept and sent.",
        ),
        "missing-expiration": Reason(
            "No expiration date",
            "Fill in the date the code stops working, for example 2031-12-31.",
        ),
        "bad-expiration": Reason(
            "The expiration date cannot be read",
            "Write the date as 2031-12-31, or use a date cell. If the message says day and "
            "month look swapped, ask for input.dayfirst to be set for this sheet.",
        ),
        "expired": Reason(
            "The expiration date has passed",
            "Choose a date from today on: a code that has already expired cannot be redeemed.",
        ),
        "multiple-entitlements": Reason(
            "The row names more than one thing to unlock",
            "Keep exactly one video, playlist, plan or pass plan on the row; put each other "
            "one on a row of its own, with its own code.",
        ),
        "bad-entitlement-type": Reason(
            "The entitlement type is not one the importer knows",
            "Write video, playlist, plan or pass plan in the type column, next to the id.",
        ),
        "missing-entitlement": Reason(
            "The row names nothing to unlock",
            "Fill in the Zype id of the video, playlist, plan or pass plan the code unlocks.",
        ),
        "bad-entitlement-id": Reason(
            "The id is not a Zype id",
            "Copy the 24-character id (digits and the letters a to f) from the Zype dashboard; "
            "check for a missing, extra or swapped character.",
        ),
        "bad-quantity": Reason(
            "The quantity is not a usable number",
            "Write a whole number from 1 up to the limit in the message, or empty the cell "
            "for a single code.",
        ),
        "quantity-with-code": Reason(
            "A row with a code asks for several codes",
            "Empty the code cell to have that many codes generated, or set the quantity to 1.",
        ),
    }
)

#: For an issue code added to the validator after this page was written.
GENERIC_FIX = (
    "Read the message beside each row, correct the cell in the spreadsheet and run the same "
    "command again: only changed and unfinished rows are sent."
)

#: How statuses are ordered and coloured: good, bad (needs a fix), warn (a rerun finishes it),
#: info, muted. A status not listed comes last, uncoloured.
TONES: Mapping[str, str] = MappingProxyType(
    {
        "created": "good",
        "updated": "good",
        "deleted": "good",
        "available": "good",
        "invalid": "bad",
        "rejected": "bad",
        "failed": "warn",
        "pending": "warn",
        "kept": "warn",
        "redeemed": "info",
        "expired": "muted",
        "missing": "bad",
        "changed": "bad",
        "not created": "muted",
    }
)

#: Titles of the message sections for the statuses that have one.
_SECTION_TITLES = {
    "rejected": "Rejected by the API",
    "failed": "Failed (the next run tries them again)",
    "pending": "Not finished (the next run picks them up)",
}

ROWS_LISTED = 200  #: row numbers listed per group
EXAMPLES = 5  #: example lines (row, code, message) per group
GROUPS_LISTED = 30  #: message groups listed per status
TIMELINE_BARS = 600  #: at most this many bars; a longer run puts several seconds in a bar
LONGEST_SHOWN = 300  #: characters of a code or message shown; the results file has them whole

#: The summary's figures shown on the page, with their labels, in this order.
_FIGURES = (
    ("requests", "requests sent"),
    ("retries", "retries"),
    ("throttled", "answered 429 (slow down)"),
    ("lookups", "lookups of codes whose answer was lost"),
    ("duration", "seconds"),
    ("rate", "codes created per second"),
)

# Indexes into a result line (ResultLine's field order).
_ROW, _STATUS, _CODE, _ERROR, _ISSUE = 0, 1, 2, 4, 5


def render_html(report: RunReport) -> str:
    """The whole page for *report*, as text. Pure: reads nothing, writes nothing."""
    counts, groups = _tally(report.lines)
    for status, n in (report.summary.get("counts") or {}).items():
        counts[str(status)] = n  # the whole results file's count
    counts = +counts  # only the statuses present
    body = [
        _header(report, counts),
        _counts_section(counts, report.summary),
        _refused_section(groups.get("invalid", {})),
    ]
    for status in _ordered(s for s in groups if s != "invalid"):
        body.append(_messages_section(status, groups[status]))
    if report.timeline:
        body.append(_timeline_section(report.timeline))
    body.append(_footer(report.summary))
    title = f"zype-import {report.command}: {report.input}"
    page = _PAGE.format(
        title=_e(title), policy=POLICY, style=_STYLE, body="\n".join(p for p in body if p)
    )
    # A lone surrogate (from a badly decoded cell) cannot be written as UTF-8: show it as "?".
    return page.encode("utf-8", "replace").decode("utf-8")


def write_html(path: str | Path, report: RunReport) -> None:
    """Write the page atomically; an :class:`~importer.errors.OutputError` if it cannot be."""
    page = render_html(report)
    atomic_write(Path(path), lambda handle: handle.write(page))


def listed(line: Cells) -> bool:
    """Whether the page lists *line*: an invalid row, or a line that carries a message."""
    return str(line[_STATUS]) == "invalid" or bool(line[_ERROR])


def collect_listed(lines: Iterable[Cells], kept: list[Cells]) -> Iterator[Cells]:
    """Pass every line through unchanged, keeping in *kept* those the page lists.

    For a command that writes the results and the page from one pass over a million lines::

        kept: list[Cells] = []
        counts = write_results(path, collect_listed(lines, kept))
        report = RunReport(..., summary=summary.as_dict(), lines=kept)
    """
    for line in lines:
        if listed(line):
            kept.append(line)
        yield line


class _Group:
    """The lines of one status sharing one reason: counted, their first rows kept."""

    __slots__ = ("examples", "last", "lines", "more_rows", "rows")

    def __init__(self) -> None:
        self.lines = 0
        self.rows: list[int] = []
        self.more_rows = 0
        self.last = -1
        self.examples: list[tuple[int, str, str]] = []

    def add(self, row: int, code: str, message: str) -> None:
        self.lines += 1
        if row == self.last:
            return  # another code of the same `quantity` row
        self.last = row
        if len(self.rows) < ROWS_LISTED:
            self.rows.append(row)
        else:
            self.more_rows += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append((row, code, message))


def _tally(lines: Iterable[Cells]) -> tuple[Counter[str], dict[str, dict[str, _Group]]]:
    """Counts per status, and per status the groups: by issue code for `invalid`, else by
    message (only lines that have one)."""
    counts: Counter[str] = Counter()
    groups: dict[str, dict[str, _Group]] = {}
    for line in lines:
        status = str(line[_STATUS])
        counts[status] += 1
        error = str(line[_ERROR] or "")
        if status == "invalid":
            key = str(line[_ISSUE] or "") or "unknown"
        elif error:
            key = error
        else:
            continue
        by_key = groups.setdefault(status, {})
        group = by_key.get(key)
        if group is None:
            group = by_key[key] = _Group()
        group.add(int(line[_ROW]), str(line[_CODE] or ""), error)
    return counts, groups


def _ordered(statuses: Iterable[str]) -> list[str]:
    known = list(TONES)
    return sorted(statuses, key=lambda s: (known.index(s) if s in known else len(known), s))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _clip(text: str) -> str:
    """*text* cut to :data:`LONGEST_SHOWN` characters: an API may answer with a whole page."""
    return text if len(text) <= LONGEST_SHOWN else text[: LONGEST_SHOWN - 1] + "…"


def _n(value: int) -> str:
    return f"{value:,}"


def _badge(status: str) -> str:
    return f'<span class="badge {TONES.get(status, "other")}">{_e(status)}</span>'


def _header(report: RunReport, counts: Counter[str]) -> str:
    total = sum(counts.values())
    attention = sum(n for s, n in counts.items() if TONES.get(s) in ("bad", "warn"))
    stopped = report.summary.get("stopped")
    if stopped:
        verdict = (
            f'<p class="verdict warn">Stopped part-way: {_e(stopped)}. Running the same command '
            "again finishes the job.</p>"
        )
    elif total == 0:
        verdict = '<p class="verdict">Nothing to do: the sheet has no data rows.</p>'
    elif attention:
        verdict = (
            f'<p class="verdict bad">{_n(attention)} of {_n(total)} result lines need '
            "attention: see below.</p>"
        )
    else:
        verdict = f'<p class="verdict good">All {_n(total)} result lines are done.</p>'
    return (
        f"<header><h1>zype-import {_e(report.command)}</h1>"
        f'<p class="meta"><span>Spreadsheet: <b>{_e(report.input)}</b></span> '
        f"<span>Started: {_e(report.started)}</span></p>{verdict}</header>"
    )


def _counts_section(counts: Counter[str], summary: Mapping[str, Any]) -> str:
    total = sum(counts.values())
    rows = "".join(
        f'<tr class="{TONES.get(status, "other")}"><th scope="row">{_badge(status)}</th>'
        f'<td class="num">{_n(n)}</td>'
        f'<td class="num">{100 * n / total:.1f}%</td></tr>'
        for status in _ordered(counts)
        if (n := counts[status])
    )
    table = (
        '<table class="counts"><thead><tr><th scope="col">status</th>'
        '<th scope="col" class="num">lines</th><th scope="col" class="num">share</th></tr>'
        f'</thead><tbody>{rows}</tbody><tfoot><tr><th scope="row">total</th>'
        f'<td class="num">{_n(total)}</td><td></td></tr></tfoot></table>'
    )
    figures = "".join(
        f"<div><dt>{_e(label)}</dt><dd>{_figure(summary[key])}</dd></div>"
        for key, label in _FIGURES
        if isinstance(summary.get(key), int | float) and not isinstance(summary.get(key), bool)
    )
    shown = f'<dl class="figures">{figures}</dl>' if figures else ""
    return f'<section id="counts"><h2>Result lines per status</h2>{table}{shown}</section>'


def _figure(value: float) -> str:
    return _n(value) if isinstance(value, int) else f"{value:,.2f}"


def row_ranges(rows: Sequence[int]) -> str:
    """Row numbers as a short text: runs of three or more consecutive rows as
    ``first-last`` (with an en dash)."""
    parts: list[str] = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end < len(rows) and rows[end] == rows[end - 1] + 1:
            continue
        run = rows[start:end]
        if len(run) >= 3:
            parts.append(f"{run[0]}–{run[-1]}")
        else:
            parts.extend(map(str, run))
        start = end
    return ", ".join(parts)


def _rows_text(group: _Group) -> str:
    listed = row_ranges(group.rows)
    more = f' <span class="more">and {_n(group.more_rows)} more</span>' if group.more_rows else ""
    return f'<p class="rows">Row{"s" if len(group.rows) > 1 else ""}: {listed}{more}</p>'


def _examples(group: _Group, *, with_message: bool) -> str:
    head = "<th>row</th><th>code</th>" + ("<th>message</th>" if with_message else "")
    body = "".join(
        f'<tr><td class="num">{row}</td><td><code>{_e(_clip(code))}</code></td>'
        + (f"<td>{_e(_clip(message))}</td>" if with_message else "")
        + "</tr>"
        for row, code, message in group.examples
    )
    return f'<table class="examples"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _refused_section(groups: Mapping[str, _Group]) -> str:
    if not groups:
        return ""
    total = sum(g.lines for g in groups.values())
    parts = [
        '<section id="refused"><h2>Refused rows '
        f'<span class="count">{_n(total)}</span></h2>'
        "<p>Nothing was sent for these rows. Correct them in the spreadsheet and run the same "
        "command again; rows already created are not sent twice.</p>"
    ]
    for code, group in sorted(groups.items(), key=lambda item: (-item[1].lines, item[0])):
        reason = ISSUES.get(code)
        title = reason.title if reason else "Refused"
        fix = reason.fix if reason else GENERIC_FIX
        parts.append(
            f'<article class="group" id="issue-{_e(code)}"><h3>{_e(title)} '
            f"<code>{_e(code)}</code> "
            f'<span class="count">{_n(group.lines)} row{"s" if group.lines != 1 else ""}</span>'
            f'</h3><p class="fix"><b>Fix:</b> {_e(fix)}</p>{_rows_text(group)}'
            f"{_examples(group, with_message=True)}</article>"
        )
    parts.append("</section>")
    return "".join(parts)


def _messages_section(status: str, groups: Mapping[str, _Group]) -> str:
    total = sum(g.lines for g in groups.values())
    title = _SECTION_TITLES.get(status, f"{status[:1].upper()}{status[1:]}, with a message")
    ranked = sorted(groups.items(), key=lambda item: (-item[1].lines, item[0]))
    parts = [
        f'<section class="messages" id="status-{_e(status.replace(" ", "-"))}">'
        f'<h2>{_e(title)} <span class="count">{_n(total)}</span></h2>'
    ]
    for message, group in ranked[:GROUPS_LISTED]:
        parts.append(
            f'<article class="group"><h3><q>{_e(_clip(message))}</q> '
            f'<span class="count">{_n(group.lines)}</span></h3>{_rows_text(group)}'
            f"{_examples(group, with_message=False)}</article>"
        )
    if len(ranked) > GROUPS_LISTED:
        rest = ranked[GROUPS_LISTED:]
        parts.append(
            f'<p class="more">and {_n(len(rest))} more messages, for '
            f"{_n(sum(g.lines for _, g in rest))} lines: see the results file.</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def timeline_svg(ticks: Sequence[Tick]) -> str:
    """Requests per second as bars (retries in their lower part), with lanes of marks under
    the axis for the seconds that got 429 answers or failures. Pure; empty for no ticks."""
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
    peak = max(requests) / per_bar
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


def _footer(summary: Mapping[str, Any]) -> str:
    files = "".join(
        f"<span>{label}: <code>{_e(summary[key])}</code></span> "
        for key, label in (("results", "Results file"), ("journal", "Journal"))
        if summary.get(key)
    )
    return f"<footer><p>{files}Written by zype-import.</p></footer>"


#: The page loads nothing and runs nothing: the browser is told so, should a value ever slip
#: through unescaped.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""

_STYLE = """
:root { color-scheme: light; --good: #1e7b34; --bad: #b3261e; --warn: #8a5a00; --info: #1f5f9e;
  --muted: #5f6368; --line: #d9dce1; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1c1f23; background: #fff; margin: 0 auto; padding: 24px; max-width: 1000px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 1em; margin: 16px 0 4px; }
.meta span { margin-right: 1.5em; color: var(--muted); }
.verdict { font-weight: 600; padding: 8px 12px; border-radius: 6px; background: #f3f4f6; }
.verdict.good { background: #e6f4ea; color: var(--good); }
.verdict.bad { background: #fce8e6; color: var(--bad); }
.verdict.warn { background: #fef7e0; color: var(--warn); }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.counts tfoot th, .counts tfoot td { font-weight: 700; border-bottom: none; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-weight: 600;
  border: 1px solid currentColor; }
.badge.good { color: var(--good); } .badge.bad { color: var(--bad); }
.badge.warn { color: var(--warn); } .badge.info { color: var(--info); }
.badge.muted, .badge.other { color: var(--muted); }
.figures { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 12px 0; }
.figures div { display: flex; flex-direction: column-reverse; }
.figures dt { color: var(--muted); font-size: .85em; }
.figures dd { margin: 0; font-size: 1.2em; font-weight: 600; }
.count { color: var(--muted); font-weight: 400; font-size: .9em; margin-left: .4em; }
.group { border-left: 3px solid var(--line); padding: 2px 0 4px 12px; margin: 12px 0; }
#refused .group { border-left-color: var(--bad); }
.fix { margin: 4px 0; } .rows { margin: 4px 0; color: #3c4043; overflow-wrap: anywhere; }
.more { color: var(--muted); font-style: italic; }
.examples { font-size: .9em; } code { font-family: ui-monospace, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.timeline { width: 100%; height: auto; max-width: 800px; display: block; }
.timeline .grid { stroke: var(--line); stroke-width: 1; }
.timeline text { font-size: 11px; fill: var(--muted); }
.timeline .ylabel { text-anchor: end; } .timeline .xlabel { text-anchor: middle; }
.timeline .requests { fill: #4e79a7; } .timeline .retries { fill: #f28e2b; }
.timeline .throttled { fill: var(--bad); } .timeline .failures { fill: #202124; }
.legend .key { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 14px;
  vertical-align: -1px; }
.legend .key:first-child { margin-left: 0; }
.legend .requests { background: #4e79a7; } .legend .retries { background: #f28e2b; }
.legend .throttled { background: var(--bad); } .legend .failures { background: #202124; }
footer { margin-top: 40px; color: var(--muted); font-size: .85em; }
footer span { margin-right: 1.5em; }
@page { margin: 14mm 12mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; }
  .group, table, .timeline { break-inside: avoid; }
  h2 { break-after: avoid; }
  .verdict, .badge, .legend .key { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
