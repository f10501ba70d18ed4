"""The xlsx results: typed cells read back with openpyxl, never a formula, written atomically."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from importer.errors import OutputError
from importer.models import ResultLine, Status
from importer.outputs import xlsx
from importer.outputs.results import COLUMNS, write_results
from importer.outputs.xlsx import STATUS_FILLS, write_results_xlsx

HEX = "5f0c3e2a9b1d4e6f7a8b9c0d"


def _line(code: str = "ABC", status: str = Status.CREATED, **fields: Any) -> ResultLine:
    values: dict[str, Any] = {
        "api_id": HEX,
        "entitlement_type": "video",
        "entitlement_id": HEX,
        "expiration_date": "2031-12-31",
        "attempts": 1,
        "http_status": 201,
    }
    values.update(fields)
    return ResultLine(2, status, code, **values)  # type: ignore[arg-type]


def _read(path: Path) -> Any:
    return openpyxl.load_workbook(path)["results"]


def _sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as package:
        return package.read("xl/worksheets/sheet1.xml").decode()


@pytest.mark.parametrize(
    "text",
    [
        "00123",
        "=1+2",
        "=cmd|' /C calc'!A0",
        '=HYPERLINK("http://x","y")',
        "+41 79 000",
        "-1",
        "@SUM(A1:A2)",
        "#N/A",
        "TRUE",
        "1e5",
        "\tindented",
        " spaces at both ends ",
        "a & b < c > d \"q\" 'a'",
        "ünïcødé 🎟 中文",
        "two\nlines",
        "carriage\rreturn",
        "<script>alert(1)</script>",
    ],
)
def test_text_cells_read_back_as_the_same_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r.xlsx"
    write_results_xlsx(path, [_line(code=text, error=text, nice_code=text)], COLUMNS)
    sheet = _read(path)
    for column in ("C", "E", "J"):
        cell = sheet[f"{column}2"]
        assert cell.value == text
        assert cell.data_type == "s"
        assert cell.number_format == "@"  # typing over the cell in Excel keeps it text


def test_a_literal_excel_escape_is_escaped_for_excel(tmp_path: Path) -> None:
    # Excel decodes _xHHHH_ in any string cell ("_x0041_" would show as "A"); its own way to
    # keep one literal is to escape the underscore. openpyxl does not decode inline strings, so
    # this is checked in the XML itself.
    path = tmp_path / "r.xlsx"
    write_results_xlsx(path, [_line(code="PROMO_x0041_")], COLUMNS)
    assert "<t>PROMO_x005F_x0041_</t>" in _sheet_xml(path)


def test_no_formula_cell_anywhere(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    tricky = ["=1+2", "=SUM(A1)", "+1", "@x", "=", "#REF!"]
    write_results_xlsx(path, [_line(code=t, error=t) for t in tricky], COLUMNS)
    sheet = _read(path)
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert "<f>" not in _sheet_xml(path)


def test_control_characters_are_shown_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    write_results_xlsx(path, [_line(error="bell\x07 and nul\x00")], COLUMNS)
    assert _read(path)["E2"].value == "bell\ufffd and nul\ufffd"


def test_an_overlong_cell_is_cut_to_excel_limit(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    write_results_xlsx(path, [_line(error="x" * 40_000)], COLUMNS)
    value = _read(path)["E2"].value
    assert len(value) == xlsx.MAX_CELL
    assert value.endswith("…")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2031-12-31", datetime(2031, 12, 31)),
        ("1999-01-01", datetime(1999, 1, 1)),
        ("2031-02-30", "2031-02-30"),  # not a date: kept as the text it is
        ("31/12/2031", "31/12/2031"),
        ("", None),
    ],
)
def test_expiration_dates_are_date_cells(
    tmp_path: Path, text: str, expected: datetime | str | None
) -> None:
    path = tmp_path / "r.xlsx"
    write_results_xlsx(path, [_line(expiration_date=text)], COLUMNS)
    cell = _read(path)["I2"]
    assert cell.value == expected
    if isinstance(expected, datetime):
        assert cell.is_date
        assert cell.number_format == "yyyy-mm-dd"


def test_numbers_are_numbers_and_empty_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    lines = [
        _line(attempts=3, http_status=422),
        ResultLine(9, Status.INVALID, "", error="no expiration date", issue="missing-expiration"),
    ]
    write_results_xlsx(path, lines, COLUMNS)
    sheet = _read(path)
    assert [sheet["A2"].value, sheet["K2"].value, sheet["L2"].value] == [2, 3, 422]
    # As in the CSV, an invalid row has no attempts, no HTTP status and no date.
    assert [sheet["A3"].value, sheet["C3"].value, sheet["K3"].value, sheet["L3"].value] == [
        9,
        None,
        None,
        None,
    ]
    assert sheet["F3"].value == "missing-expiration"


def test_header_frozen_with_a_filter_over_every_line(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    counts = write_results_xlsx(path, [_line(code=f"C{n}") for n in range(5)], COLUMNS)
    sheet = _read(path)
    assert [cell.value for cell in sheet[1]] == list(COLUMNS)
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:L6"
    assert counts == {"created": 5}


@pytest.mark.parametrize("status", [*STATUS_FILLS, "some new status"])
def test_status_cells_are_bold_and_filled_by_status(tmp_path: Path, status: str) -> None:
    path = tmp_path / "r.xlsx"
    counts = write_results_xlsx(path, [_line(status=status)], COLUMNS)
    cell = _read(path)["B2"]
    assert cell.value == status
    assert cell.font.b
    expected = STATUS_FILLS.get(status)
    if expected is None:
        assert cell.fill.fill_type is None
    else:
        assert cell.fill.fgColor.rgb == "FF" + expected
    assert counts == {status: 1}


def test_statuses_that_need_attention_differ_from_created() -> None:
    assert STATUS_FILLS["created"] != STATUS_FILLS["invalid"]
    assert STATUS_FILLS["created"] != STATUS_FILLS["failed"]
    assert STATUS_FILLS["invalid"] != STATUS_FILLS["failed"]


def test_other_columns_than_the_results_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.xlsx"
    columns = ("row", "code", "status", "expiration_date", "redeemed_at")
    lines = [(2, "007", "redeemed", "2031-01-01", "2030-05-06 10:00")]
    assert write_results_xlsx(path, lines, columns) == {"redeemed": 1}
    sheet = _read(path)
    assert [c.value for c in sheet[2]] == [
        2,
        "007",
        "redeemed",
        datetime(2031, 1, 1),
        "2030-05-06 10:00",
    ]


@pytest.mark.parametrize("name", ["out.xlsx", "OUT.XLSX"])
def test_write_results_sends_an_xlsx_path_to_the_xlsx_writer(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    counts = write_results(path, [tuple(_line(code="00123")), tuple(_line(status=Status.FAILED))])
    assert zipfile.is_zipfile(path)
    assert counts == {"created": 1, "failed": 1}
    assert _read(path)["C2"].value == "00123"


def test_write_results_still_writes_csv_for_other_paths(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_results(path, [tuple(_line(code="=1+2"))])
    assert path.read_text(encoding="utf-8-sig").splitlines()[1].split(",")[2] == "'=1+2"


def _lines_then_crash() -> Iterator[tuple[Any, ...]]:
    yield tuple(_line())
    raise OSError(28, "No space left on device")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    write_results_xlsx(path, [_line(code="OLD")], COLUMNS)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="No space left on device"):
        write_results_xlsx(path, _lines_then_crash(), COLUMNS)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.xlsx"]


def test_more_lines_than_a_sheet_holds_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "MAX_ROWS", 4)
    path = tmp_path / "r.xlsx"
    with pytest.raises(OutputError, match=r"write the results as \.csv"):
        write_results_xlsx(path, [_line(code=f"C{n}") for n in range(4)], COLUMNS)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    write_results_xlsx(path, [_line(code=f"C{n}") for n in range(3)], COLUMNS)  # fits exactly
    assert _read(path).max_row == 4


def test_a_large_sheet_streams_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    lines = (
        tuple(_line(code=f"{n:06d}", status=Status.CREATED if n % 3 else Status.INVALID))
        for n in range(5_000)
    )
    counts = write_results_xlsx(path, lines, COLUMNS)
    assert counts == {"created": 3_333, "invalid": 1_667}
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        last = next(book["results"].iter_rows(min_row=5_001, max_row=5_001, values_only=True))
    finally:
        book.close()
    assert last[2] == "004999"


SOFFICE = shutil.which("soffice")


@pytest.mark.slow
@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_reads_the_types(tmp_path: Path) -> None:
    # A second reader besides openpyxl, since the package is written by hand: LibreOffice
    # converts it to its flat XML format, which states every cell's type.
    path = tmp_path / "r.xlsx"
    write_results_xlsx(
        path,
        [_line(code="00123"), _line(code="=1+2", error="#N/A", status=Status.INVALID)],
        COLUMNS,
    )
    profile = (tmp_path / "profile").as_uri()
    subprocess.run(
        [str(SOFFICE), f"-env:UserInstallation={profile}", "--headless", "--convert-to", "fods",
         "--outdir", str(tmp_path), str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    flat = (tmp_path / "r.fods").read_text(encoding="utf-8")
    cells = re.findall(r'office:value-type="(\w+)"[^>]*>\s*(?:<text:p>([^<]*)</text:p>)?', flat)
    assert ("string", "00123") in cells
    assert ("string", "=1+2") in cells
    assert ("string", "#N/A") in cells
    assert sum(kind == "date" for kind, _ in cells) == 2
    assert "table:formula" not in flat
    assert 'table:target-range-address="results.A1:results.L3"' in flat
