"""Formula errors in .xlsx sheets: found in the XML, shown as the person sees them."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import Workbook

from importer.config import InputConfig
from importer.rules.validate import validate
from importer.sheet.errorcells import _scan, error_cells
from importer.sheet.load import load

VID = "5f1a2b3c4d5e6f7a8b9c0d11"


def workbook(tmp_path: Path, rows: list[list[object]], title: str = "Codes & co") -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)  # openpyxl stores "#N/A" and the like as error cells (t="e")
    path = tmp_path / "errors.xlsx"
    book.save(path)
    return path


def test_error_cells_are_found_by_position(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Code", "Expires"], ["#N/A", "2031-12-31"], ["A", "#DIV/0!"]])
    assert error_cells(path, "Codes & co") == {(1, 0): "#N/A", (2, 1): "#DIV/0!"}
    assert error_cells(path, "Other") == {}


@pytest.mark.parametrize(
    ("cells", "issue"),
    [
        (["#N/A", "2031-12-31", VID, ""], "bad-code"),  # never a generated code
        (["A1", "#VALUE!", VID, ""], "bad-expiration"),
        (["A1", "2031-12-31", "#REF!", ""], "bad-entitlement-id"),
        (["", "2031-12-31", VID, "#NAME?"], "bad-quantity"),
    ],
)
def test_a_failed_formula_is_refused_not_read_as_empty(
    tmp_path: Path, cells: list[object], issue: str
) -> None:
    path = workbook(tmp_path, [["Code", "Expires", "Video", "Qty"], cells])
    checked = validate(load(path, InputConfig()), InputConfig(), dt.date(2026, 6, 15))
    assert [(i.row, i.code) for i in checked.issues] == [(2, issue)]
    assert checked.records == []


@pytest.mark.parametrize("size", [7, 64, 1000, 1 << 20])
def test_cells_cut_by_chunk_boundaries_are_found_once(size: int) -> None:
    xml = (
        b"<sheetData>"
        + b"".join(
            b'<row r="%d"><c r="B%d" s="1" t="e"><f>VLOOKUP(A%d,X!A:B,2,0)</f><v>#N/A</v></c>'
            b'<c r="C%d" t="s"><v>4</v></c></row>' % (n, n, n, n)
            for n in range(1, 200)
        )
        + b"</sheetData>"
    )
    found = _scan(io.BytesIO(xml).read, size)
    assert found == {(n - 1, 1): "#N/A" for n in range(1, 200)}
