"""The report page: its content as a pure function, and the page as headless Chromium renders it."""

from __future__ import annotations

import csv
import inspect
import itertools
import json
import re
from collections import Counter
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest

import importer.rules.validate
from importer.config import Settings
from importer.errors import OutputError
from importer.models import ResultLine, Status, Tick
from importer.outputs import report
from importer.outputs.report import (
    GENERIC_FIX,
    ISSUES,
    POLICY,
    RunReport,
    collect_listed,
    render_html,
    row_ranges,
    timeline_svg,
    write_html,
)
from importer.outputs.results import build_lines, write_results
from importer.outputs.summary import Summary
from importer.rules.validate import validate
from importer.sheet.load import load
from tests.browser import render

HEX = "5f0c3e2a9b1d4e6f7a8b9c0d"
#: Cells a marketer's sheet or an API answer might hold, meant to break out of the page.
HOSTILE = [
    "<script>document.title='owned'</script>",
    '"><img src=x onerror="document.title=\'owned\'">',
    "'><svg onload=alert(1)>",
    "=cmd|' /C calc'!A0",
    "</td></tr></table><iframe src=//evil.example>",
    "<style>body{display:none}</style>",
    "ünïcødé 🎟 中文 עברית",
    "&amp; &lt;b&gt; not bold",
]


def _report(lines: list[ResultLine], **kwargs: Any) -> RunReport:
    summary: dict[str, Any] = {"rows": len(lines), "counts": {}}
    summary.update(kwargs.pop("summary", {}))
    return RunReport("run", "promo.csv", "2026-11-29 22:00:00", summary, lines, **kwargs)


def _invalid(row: int, issue: str, code: str = "X", error: str = "bad") -> ResultLine:
    return ResultLine(row, Status.INVALID, code, error=error, issue=issue)


def _messy() -> RunReport:
    """A run of a messy sheet: hostile cells everywhere, several issues, the API refusing some."""
    lines = [ResultLine(2, Status.CREATED, "00123", api_id=HEX)]
    lines += [_invalid(3 + n, "bad-code", code=cell, error=cell) for n, cell in enumerate(HOSTILE)]
    lines += [
        _invalid(20 + n, "duplicate-code", code="DUP", error="duplicate of row 2") for n in range(3)
    ]
    lines += [_invalid(30, "some-new-issue", code="NEW", error="a rule added later")]
    lines += [ResultLine(40 + n, Status.REJECTED, f"R{n}", error=HOSTILE[n]) for n in range(2)]
    lines += [ResultLine(45, Status.FAILED, "F1", error="503 after 6 attempts")]
    ticks = [
        Tick(s, 10, 2 if s % 5 == 0 else 0, 1 if s == 3 else 0, 1 if s == 7 else 0)
        for s in range(12)
    ]
    summary = {
        "requests": 120,
        "retries": 5,
        "throttled": 1,
        "lookups": 0,
        "duration": 12.5,
        "rate": 0.1,
        "results": "out/promo.results.csv",
        "journal": "out/promo.results.journal",
        "key": "CANARY-never-shown-3f9a",
    }
    return _report(lines, summary=summary, timeline=ticks)


class _Tags(HTMLParser):
    """Every start tag and every attribute name, as an HTML parser (a browser) sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


# ---- content -------------------------------------------------------------------------------


def test_counts_for_every_status_present_in_order() -> None:
    page = render_html(_messy())
    counts = re.findall(r'<span class="badge \w+">([^<]+)</span></th><td class="num">(\d+)', page)
    assert counts == [("created", "1"), ("invalid", "12"), ("rejected", "2"), ("failed", "1")]
    assert "pending" not in re.findall(r'class="badge \w+">([^<]+)<', page)


@pytest.mark.parametrize(
    ("statuses", "shown"),
    [
        (["deleted", "kept", "deleted"], [("deleted", "2"), ("kept", "1")]),
        (
            ["available", "redeemed", "not created", "missing"],
            [("available", "1"), ("redeemed", "1"), ("missing", "1"), ("not created", "1")],
        ),
        (["brand new", "created"], [("created", "1"), ("brand new", "1")]),
    ],
)
def test_any_status_text_is_counted(statuses: list[str], shown: list[tuple[str, str]]) -> None:
    lines = [ResultLine(n + 2, s, f"C{n}") for n, s in enumerate(statuses)]  # type: ignore[arg-type]
    page = render_html(_report(lines))
    assert (
        re.findall(r'<span class="badge \w+">([^<]+)</span></th><td class="num">(\d+)', page)
        == shown
    )


def test_without_lines_the_summary_counts_are_shown() -> None:
    summary = {"counts": {"created": 4, "invalid": 0, "failed": 1}}
    page = render_html(_report([], summary=summary))
    assert re.findall(r'class="badge \w+">([^<]+)</span></th><td class="num">(\d+)', page) == [
        ("created", "4"),
        ("failed", "1"),
    ]


def test_the_summary_counts_the_whole_file_and_lines_add_other_statuses() -> None:
    lines = [_invalid(2, "expired"), ResultLine(3, "kept", "K", error="redeemed")]  # type: ignore[arg-type]
    summary = {"counts": {"created": 1_000, "invalid": 2, "failed": 0}}
    page = render_html(_report(lines, summary=summary))
    assert re.findall(r'class="badge \w+">([^<]+)</span></th><td class="num">([\d,]+)', page) == [
        ("created", "1,000"),
        ("invalid", "2"),
        ("kept", "1"),
    ]


def test_a_page_from_the_listed_lines_alone_is_the_same_page() -> None:
    everything = list(_messy().lines) + [
        ResultLine(n, Status.CREATED, f"OK{n}") for n in range(50, 90)
    ]
    kept: list[Any] = []
    passed = list(collect_listed(everything, kept))
    assert passed == everything
    assert len(kept) == 15  # 12 invalid, 2 rejected, 1 failed: created lines are not kept
    counts = Counter(str(line[1]) for line in everything)
    summary = Summary("run", counts).as_dict()
    full = RunReport("run", "promo.csv", "2026-11-29 22:00:00", summary, everything)
    small = RunReport("run", "promo.csv", "2026-11-29 22:00:00", summary, kept)
    assert render_html(small) == render_html(full)


def test_refused_rows_grouped_by_issue_with_rows_and_fix() -> None:
    page = render_html(_messy())
    assert page.index('id="issue-bad-code"') < page.index('id="issue-duplicate-code"')  # by size
    duplicate = page[page.index('id="issue-duplicate-code"') :]
    duplicate = duplicate[: duplicate.index("</article>")]
    assert "3 rows" in duplicate
    assert "Rows: 20–22" in duplicate
    assert ISSUES["duplicate-code"].fix.split(":")[0] in duplicate
    assert "duplicate of row 2" in duplicate


def test_an_unknown_issue_gets_the_generic_fix_and_shows_its_code() -> None:
    page = render_html(_messy())
    new = page[page.index('id="issue-some-new-issue"') :]
    new = new[: new.index("</article>")]
    assert "<code>some-new-issue</code>" in new
    assert GENERIC_FIX.split(":")[0] in new
    assert "Row: 30" in new


def test_every_issue_code_of_the_validator_has_its_own_fix() -> None:
    # The codes the validator actually emits: every rules.flag(mask, "code", column) call.
    source = inspect.getsource(importer.rules.validate)
    emitted = set(re.findall(r'rules\.flag\(.*?, "([a-z]+(?:-[a-z]+)*)",', source))
    assert len(emitted) >= 12
    missing = emitted - set(ISSUES)
    assert not missing, f"add a Reason for {sorted(missing)} to importer.outputs.report.ISSUES"


def test_api_rejections_grouped_by_message() -> None:
    lines = [
        ResultLine(n + 2, Status.REJECTED, f"C{n}", error="code has already been taken")
        for n in range(4)
    ]
    lines += [ResultLine(9, Status.REJECTED, "Z", error="video not found")]
    page = render_html(_report(lines))
    section = page[page.index('id="status-rejected"') :]
    assert "Rejected by the API" in section
    assert section.index("code has already been taken") < section.index("video not found")
    assert "Rows: 2–5" in section


def test_long_lists_are_capped_with_and_n_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "ROWS_LISTED", 10)
    monkeypatch.setattr(report, "GROUPS_LISTED", 3)
    lines = [
        _invalid(n, "expired", error="expiration date 2020-01-01 has passed")
        for n in range(2, 5002, 2)
    ]
    lines += [
        ResultLine(9000 + n, Status.REJECTED, f"C{n}", error=f"message {n}") for n in range(7)
    ]
    page = render_html(_report(lines))
    assert "Rows: 2, 4, 6, 8, 10, 12, 14, 16, 18, 20" in page
    assert "and 2,490 more" in page
    assert "and 4 more messages, for 4 lines" in page
    assert page.count('<tr><td class="num">') <= 5 * (1 + 3)  # examples capped too


def test_codes_of_one_quantity_row_list_the_row_once() -> None:
    lines = [ResultLine(7, Status.FAILED, f"G{n}", error="timeout") for n in range(50)]
    page = render_html(_report(lines))
    assert "Row: 7</p>" in page
    assert ">50</span></h3>" in page


@pytest.mark.parametrize(
    ("rows", "text"),
    [
        ([], ""),
        ([4], "4"),
        ([4, 5], "4, 5"),
        ([4, 5, 6], "4–6"),
        ([2, 3, 4, 9, 11, 12, 13, 14, 20], "2–4, 9, 11–14, 20"),
    ],
)
def test_row_ranges(rows: list[int], text: str) -> None:
    assert row_ranges(rows) == text


@pytest.mark.parametrize("cell", HOSTILE)
def test_no_cell_becomes_markup(cell: str) -> None:
    lines = [
        _invalid(2, cell, code=cell, error=cell),
        ResultLine(3, cell, cell, error=cell),  # type: ignore[arg-type]
        ResultLine(4, Status.REJECTED, cell, error=cell),
    ]
    rep = RunReport(cell, cell, cell, {"counts": {}, "stopped": cell, "results": cell}, lines)
    parsed = _parse(render_html(rep))
    assert parsed.tags <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "span",
        "b", "section", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "dl", "div", "dt",
        "dd", "article", "code", "q", "footer",
    }  # fmt: skip
    assert not {a for a in parsed.attributes if a.startswith("on") or a in ("src", "href")}


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    page = render_html(_messy())
    assert f'content="{POLICY}"' in page
    assert "default-src 'none'" in POLICY
    parsed = _parse(page)
    assert not parsed.tags & {"script", "link", "img", "iframe", "object", "embed", "base"}
    assert not parsed.attributes & {"src", "href", "srcset", "action", "xlink:href"}
    style = page[page.index("<style>") : page.index("</style>")]
    assert not re.search(r"url\(|@import|@font-face", style)


def test_unknown_summary_keys_never_reach_the_page() -> None:
    page = render_html(_messy())
    assert "CANARY-never-shown-3f9a" not in page
    assert "out/promo.results.csv" in page


def test_a_lone_surrogate_does_not_break_writing(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    write_html(path, _report([_invalid(2, "bad-code", code="bad\udc80code")]))
    assert "bad?code" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("summary", "verdict"),
    [
        ({"stopped": "the API refused the key"}, "Stopped part-way: the API refused the key"),
        ({}, "15 of 16 result lines need attention"),
    ],
)
def test_the_verdict_says_what_to_do(summary: dict[str, Any], verdict: str) -> None:
    rep = _messy()
    rep = RunReport(rep.command, rep.input, rep.started, {**rep.summary, **summary}, rep.lines)
    assert verdict in render_html(rep)


def test_a_clean_run_says_all_done() -> None:
    lines = [ResultLine(n, Status.CREATED, f"C{n}") for n in range(2, 6)]
    page = render_html(_report(lines))
    assert "All 4 result lines are done." in page
    assert 'id="refused"' not in page


def test_figures_shown_only_when_present() -> None:
    assert "requests sent" not in render_html(_report([ResultLine(2, Status.INVALID, "X")]))
    page = render_html(_messy())
    assert "<dt>requests sent</dt><dd>120</dd>" in page
    assert "<dt>seconds</dt><dd>12.50</dd>" in page


# ---- timeline ------------------------------------------------------------------------------


def test_no_timeline_without_ticks() -> None:
    assert timeline_svg([]) == ""
    rep = _messy()
    page = render_html(RunReport(rep.command, rep.input, rep.started, rep.summary, rep.lines))
    assert "<svg" not in page
    assert "<svg" in render_html(rep)


def _path(svg: str, series: str) -> str:
    path = re.search(rf'class="{series}" d="([^"]*)"', svg)
    assert path is not None
    return path.group(1)


def _bars(svg: str, series: str) -> list[float]:
    return [float(h) for h in re.findall(r"v-([\d.]+)", _path(svg, series))]


def test_timeline_bars_scale_to_requests_and_mark_429s_and_failures() -> None:
    ticks = [Tick(0, 10, 0, 0, 0), Tick(1, 20, 5, 2, 0), Tick(3, 5, 5, 0, 3)]
    svg = timeline_svg(ticks)
    assert _bars(svg, "requests") == [75.0, 150.0, 37.5]  # the axis' top is 20: 150 px
    assert _bars(svg, "retries") == [37.5, 37.5]
    assert _path(svg, "throttled").count("l4 8h-8z") == 1  # one mark per second with 429s
    assert _path(svg, "failures").count("l4 8h-8z") == 1
    assert {">20</text>", ">10</text>", ">0</text>"} <= set(re.findall(r">\d+</text>", svg))


def test_a_long_run_is_drawn_in_at_most_timeline_bars() -> None:
    ticks = [Tick(s, 98, 0, 1 if s == 3_000 else 0, 0) for s in range(0, 36_000)]
    svg = timeline_svg(ticks)
    assert len(_bars(svg, "requests")) == 600
    assert len(set(_bars(svg, "requests"))) == 1  # 60 s per bar, averaged: all equal
    assert "averaged over 60 s per bar" in svg
    assert "10 h 00" in svg


@pytest.mark.parametrize(
    ("peak", "top"),
    [(0.5, 1.0), (1, 1.0), (3, 5.0), (10, 10.0), (11, 20.0), (98, 100.0), (120, 200.0)],
)
def test_axis_top_is_a_round_number(peak: float, top: float) -> None:
    assert report._nice(peak) == top


# ---- writing -------------------------------------------------------------------------------


def test_write_html_is_atomic_and_utf8(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"
    write_html(path, _messy())
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_write_html_to_a_folder_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write it"):
        write_html(tmp_path, _messy())


# ---- in a real browser ---------------------------------------------------------------------

#: What the test reads from the rendered page: its text, counts, and any element that a
#: hostile cell could have injected.
PROBE = """JSON.stringify({
  title: document.title,
  text: document.body.innerText,
  counts: [...document.querySelectorAll('table.counts tbody tr')].map(
      r => [r.cells[0].innerText.trim(), r.cells[1].innerText.trim()]),
  groups: [...document.querySelectorAll('#refused article h3 code')].map(c => c.innerText),
  injected: document.querySelectorAll(
      'script, img, iframe, object, embed, link, svg:not(.timeline), body style').length,
  handlers: [...document.querySelectorAll('*')].filter(
      e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
  bars: document.querySelectorAll('svg.timeline path.requests').length,
  width: document.documentElement.scrollWidth,
})"""


def test_the_page_renders_cleanly_in_chromium(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(path, _messy())
    rendered = render(path, PROBE)
    assert rendered.problems == []
    assert rendered.requests == [path.resolve().as_uri()]
    page = json.loads(rendered.value)
    assert page["title"] == "zype-import run: promo.csv"
    assert page["counts"] == [
        ["created", "1"],
        ["invalid", "12"],
        ["rejected", "2"],
        ["failed", "1"],
    ]
    assert page["groups"] == ["bad-code", "duplicate-code", "some-new-issue"]
    assert page["injected"] == 0
    assert page["handlers"] == 0
    assert page["bars"] == 1
    for cell in HOSTILE[:3]:
        assert cell in page["text"]  # shown as the text it is
    assert "Fix:" in page["text"]
    assert "CANARY-never-shown-3f9a" not in page["text"]


def test_the_browser_check_does_see_errors_and_requests(tmp_path: Path) -> None:
    # The check above means something only if the same probe catches a page that misbehaves.
    path = tmp_path / "bad.html"
    path.write_text(
        "<!DOCTYPE html><title>x</title><img src='http://127.0.0.1:9/pixel.png'>"
        "<script>console.error('boom'); undefinedFunction();</script>"
    )
    rendered = render(path, "document.querySelectorAll('img, script').length")
    assert rendered.value == 2
    assert any("boom" in line for line in rendered.console)
    assert any("undefinedFunction" in line for line in rendered.exceptions)
    assert "http://127.0.0.1:9/pixel.png" in rendered.requests


# ---- a messy sheet, loaded and validated for real ------------------------------------------

MESSY_ROWS = [
    ["Promo Code", "Expires", "Video ID", "Notes"],
    ["00123", "2031-01-31", "5f1a2b3c4d5e6f7a8b9c0d11", "leading zeros"],
    *([cell, "2031-01-31", "5f1a2b3c4d5e6f7a8b9c0d11", ""] for cell in HOSTILE[:2]),
    [HOSTILE[3], "2031-01-31", "5f1a2b3c4d5e6f7a8b9c0d11", ""],
    ["CAFÉ-ÜNÏ", "2031-01-31", "5f1a2b3c4d5e6f7a8b9c0d11", ""],
    ["00123", "2031-01-31", "5f1a2b3c4d5e6f7a8b9c0d11", "repeat"],
    ["NO-DATE", "", "5f1a2b3c4d5e6f7a8b9c0d11", ""],
    ["OLD", "2020-01-01", "5f1a2b3c4d5e6f7a8b9c0d11", ""],
    ["SHORT-ID", "2031-01-31", "5f1a2b", ""],
    ["GOOD-1", "2031-01-31", "5f1a2b3c4d5e6f7a8b9c0d11", "<b>not bold</b>"],
]


def test_a_messy_sheet_validated_for_real_renders_right_in_chromium(tmp_path: Path) -> None:
    sheet_path = tmp_path / "messy.csv"
    with sheet_path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(MESSY_ROWS)
    settings = Settings()
    checked = validate(load(sheet_path, settings.input), settings.input, date(2026, 11, 29))
    lines = list(build_lines(checked.records, checked.issues, itertools.repeat(None)))
    counts = write_results(tmp_path / "messy.results.xlsx", lines)
    summary = Summary("validate", counts, results=str(tmp_path / "r.xlsx")).as_dict()
    rep = RunReport("validate", str(sheet_path), "2026-11-29 22:00:00", summary, lines)
    path = tmp_path / "report.html"
    write_html(path, rep)

    rendered = render(path, PROBE)
    assert rendered.problems == []
    assert rendered.requests == [path.resolve().as_uri()]
    page = json.loads(rendered.value)
    assert page["injected"] == 0
    assert page["handlers"] == 0
    assert counts == {"invalid": 8, "pending": 2}  # validate: the valid rows are not sent
    assert page["counts"] == [["invalid", "8"], ["pending", "2"]]
    expected = Counter(issue.code for issue in checked.issues)
    assert set(page["groups"]) == set(expected)
    assert expected == {
        "bad-code": 4,
        "duplicate-code": 1,
        "missing-expiration": 1,
        "expired": 1,
        "bad-entitlement-id": 1,
    }
    assert "duplicate of row 2" in page["text"]
    assert HOSTILE[0] in page["text"]
    assert HOSTILE[1] in page["text"]
    assert ISSUES["expired"].fix in page["text"]
    assert page["bars"] == 0  # validate sends nothing: no timeline

    # The same run's results as xlsx: zeros kept, the would-be formula a plain string.
    book = openpyxl.load_workbook(tmp_path / "messy.results.xlsx")
    cells = [c for row in book["results"].iter_rows() for c in row]
    assert book["results"]["C2"].value == "00123"
    assert not [c for c in cells if c.data_type == "f"]
    assert HOSTILE[3] in [c.value for c in cells]


def test_the_timeline_draws_the_pace_the_limiter_allowed() -> None:
    """--rate auto's search shows as a line over the bars: one step per second, at its pace."""
    ticks = [Tick(0, 4, 0, 0, 0, 4.0), Tick(1, 16, 0, 0, 0, 16.0), Tick(2, 30, 0, 1, 0, 31.0)]
    svg = report.timeline_svg(ticks)
    line = re.search(r'<path class="pace" d="([^"]*)"/>', svg)
    assert line is not None
    steps = re.findall(r"M([\d.]+) ([\d.]+)h", line.group(1))
    assert len(steps) == 3
    heights = [float(y) for _, y in steps]
    assert heights[0] > heights[1] > heights[2]  # a rising pace climbs up the plot
    assert report.timeline_svg([Tick(0, 3, 0, 0, 0)]).count('class="pace" d=""') == 1
