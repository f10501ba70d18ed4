"""The report page of a run (``--html FILE``): what a person reads after `run`, `validate`,
`undo` or `audit`.

One self-contained HTML file: no script at all, the style inline, no font, image or anything else
loaded from anywhere (a Content-Security-Policy of ``default-src 'none'`` says so to the browser
too), light and printable. It shows:

- the count of result lines per status, for every status present;
- the refused rows (`invalid`), grouped by issue code, with the row numbers and the fix a
  marketer should make (:data:`ISSUES`; a generic fix for a code not listed there);
- every other status whose lines carry a message (the API's rejections, failures, codes kept by
  `undo`, changes found by `audit`), grouped by message;
- for runs that sent requests, a timeline of requests per second with retries, 429 answers and
  failures marked: inline SVG drawn from the :class:`Tick` list the request engine recorded.

Every value that comes from the spreadsheet, the API or the summary is HTML-escaped, so a cell
holding ``<script>`` shows as text. Lists are capped (row numbers, examples, messages) with
"and N more", so a million-row run still gives a page of a few hundred kilobytes at most.

This module gathers the lines and writes the sections; the fix texts are in
:mod:`~importer.outputs.report.text`, the frame, style sheet and escaping in
:mod:`~importer.outputs.report.page`, the timeline in :mod:`~importer.outputs.report.timeline`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.models import Tick
from importer.outputs.files import atomic_write
from importer.outputs.report.page import _PAGE, _STYLE, POLICY, TONES, _e, _n
from importer.outputs.report.text import _SECTION_TITLES, GENERIC_FIX, ISSUES, Reason
from importer.outputs.report.timeline import _nice as _nice
from importer.outputs.report.timeline import _timeline_section, timeline_svg
from importer.outputs.results import Cells

__all__ = [
    "GENERIC_FIX",
    "ISSUES",
    "POLICY",
    "TONES",
    "Reason",
    "RunReport",
    "collect_listed",
    "listed",
    "render_html",
    "row_ranges",
    "timeline_svg",
    "write_html",
]


@dataclass(frozen=True)
class RunReport:
    """Everything the page shows, gathered by the command that ran.

    `lines` are the result lines (:class:`~importer.models.ResultLine`, or plain tuples in its
    field order); `status` may be any text (`undo`: deleted/kept, `audit`: available, redeemed,
    ...). Every line, or only those the page lists (see :func:`collect_listed`, which keeps a
    million-line run from holding every line in memory): the counts come from
    ``summary["counts"]``, which counts the whole results file, and from `lines` for a status
    the summary does not count. `summary` is :meth:`importer.commands.context.Summary.as_dict`; only
    its known figures are shown, so a key added to it later never reaches the page unseen.
    """

    command: str
    input: str
    started: str
    summary: Mapping[str, Any]
    lines: Sequence[Cells]
    timeline: Sequence[Tick] = ()


ROWS_LISTED = 200  #: row numbers listed per group
EXAMPLES = 5  #: example lines (row, code, message) per group
GROUPS_LISTED = 30  #: message groups listed per status
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


def _clip(text: str) -> str:
    """*text* cut to :data:`LONGEST_SHOWN` characters: an API may answer with a whole page."""
    return text if len(text) <= LONGEST_SHOWN else text[: LONGEST_SHOWN - 1] + "…"


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


def _footer(summary: Mapping[str, Any]) -> str:
    files = "".join(
        f"<span>{label}: <code>{_e(summary[key])}</code></span> "
        for key, label in (("results", "Results file"), ("journal", "Journal"))
        if summary.get(key)
    )
    return f"<footer><p>{files}Written by zype-import.</p></footer>"
