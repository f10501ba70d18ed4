"""The results file: escaping for Excel, input order, conflicts, atomic writes, the summary."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importer.journal import Entry
from importer.models import Record, ResultLine, RowIssue, Status
from importer.outputs.results import (
    COLUMNS,
    build_lines,
    escape,
    format_line,
    record_line,
    write_results,
)

DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\n")
VIDEO = "5a1b2c3d4e5f60718293a4b5"
PLAYLIST = "0123456789abcdef01234567"


def _record(row: int, code: str = "SPRING1", kind: str = "video", eid: str = VIDEO) -> Record:
    return Record(row, f"code:{code.upper()}", code, "2031-01-31", kind, eid)


def _entry(record: Record, status: Status, **kw: object) -> Entry:
    values = {
        "row": record.row,
        "code": record.code,
        "fingerprint": record.fingerprint,
        "status": status.value,
        "api_id": "",
        "nice_code": "",
        "error": "",
        "http_status": None,
        "attempts": 0,
        "unsure": False,
    }
    values.update(kw)
    return Entry(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-A", "'-A"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\nx", "'\nx"),
        ("==double", "'==double"),
        ("SAFE-CODE", "SAFE-CODE"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_escape_table(cell: str, expected: str) -> None:
    assert escape(cell) == expected


@given(st.sampled_from(DANGEROUS), st.text())
def test_escape_neutralises_every_dangerous_start(start: str, rest: str) -> None:
    escaped = escape(start + rest)
    assert escaped == "'" + start + rest
    assert not escaped.startswith(DANGEROUS)


@given(st.text())
def test_escape_never_leaves_a_formula_start(text: str) -> None:
    assert not escape(text).startswith(DANGEROUS)


def test_lines_come_in_input_order_with_issues_between_records() -> None:
    records = [_record(2, "A1"), _record(5, "B2"), _record(5, "B3")]
    issues = [
        RowIssue(
            3, "expired", "expiration_date", "expiration date 2020-01-01 has passed", value="OLD"
        )
    ]
    cells = build_lines(records, issues, [None] * len(records))
    lines = [ResultLine._make(line) for line in cells]
    assert [(line.row, line.status) for line in lines] == [
        (2, Status.PENDING),
        (3, Status.INVALID),
        (5, Status.PENDING),
        (5, Status.PENDING),
    ]
    assert lines[1].code == "OLD"
    assert lines[1].issue == "expired"


def test_sending_in_journal_shows_as_pending() -> None:
    record = _record(2)
    line = record_line(record, _entry(record, Status.SENDING))
    assert line.status == Status.PENDING


def test_created_row_now_naming_another_entitlement_is_reported_not_hidden() -> None:
    created = _record(2)
    edited = _record(2, kind="playlist", eid=PLAYLIST)
    line = record_line(edited, _entry(created, Status.CREATED, api_id="f" * 24))
    assert line.status == Status.REJECTED
    assert line.issue == "changed-after-create"
    assert f"video {VIDEO}" in line.error
    assert line.api_id == "f" * 24


def test_created_row_with_a_new_date_stays_created_with_a_note() -> None:
    created = _record(2)
    edited = Record(2, created.key, created.code, "2032-12-31", "video", VIDEO)
    line = record_line(edited, _entry(created, Status.CREATED, api_id="e" * 24))
    assert line.status == Status.CREATED
    assert "2032-12-31 was not applied" in line.error


def test_results_file_is_excel_friendly(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.csv"
    lines = [
        ResultLine(
            2, Status.REJECTED, "=HYPERLINK(1)", error="-bad thing", http_status=422, attempts=1
        ),
        ResultLine(3, Status.CREATED, "ÉTÉ2031", api_id="a" * 24, nice_code="ÉTÉ2-031"),
    ]
    counts = write_results(path, lines)
    assert counts == {"rejected": 1, "created": 1}
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS
    assert rows[0]["code"] == "'=HYPERLINK(1)"
    assert rows[0]["error"] == "'-bad thing"
    assert rows[0]["http_status"] == "422"
    assert rows[1]["code"] == "ÉTÉ2031"
    assert rows[1]["http_status"] == ""
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("old contents")

    def broken() -> object:
        yield ResultLine(2, Status.CREATED, "A")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_results(path, broken())  # type: ignore[arg-type]
    assert path.read_text() == "old contents"
    assert list(tmp_path.iterdir()) == [path]


@given(st.text(), st.text(), st.text())
def test_hand_written_csv_reads_back_exactly(code: str, error: str, nice: str) -> None:
    line = ResultLine(7, Status.REJECTED, code, "", error, "", nice_code=nice, http_status=422)
    text = format_line(line)
    assert text.endswith("\r\n")
    (cells,) = list(csv.reader(io.StringIO(text, newline="")))
    assert cells[0] == "7"
    assert cells[2] == escape(code)
    assert cells[4] == escape(error)
    assert cells[9] == escape(nice)
    assert cells[11] == "422"
