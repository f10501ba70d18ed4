"""Formula errors in Excel 97 (.xls) sheets: found in the BIFF8 records, shown as the person
sees them (tests/sheet/data/formula_errors.xls is written by LibreOffice in
``samples/make_samples.py``)."""

from __future__ import annotations

import datetime as dt
import shutil
import struct
from pathlib import Path

from importer.config import InputConfig
from importer.rules.validate import validate
from importer.sheet import guard, xls
from importer.sheet.load import load

DATA = Path(__file__).resolve().parent / "data"


def record(kind: int, body: bytes) -> bytes:
    return struct.pack("<HH", kind, len(body)) + body


def bound_sheet(offset: int, name: str, wide: bool = False) -> bytes:
    chars = name.encode("utf-16-le" if wide else "latin-1")
    return record(0x85, struct.pack("<IBBBB", offset, 0, 0, len(name), int(wide)) + chars)


def formula(row: int, column: int, error: int) -> bytes:
    value = bytes([2, 0, error, 0, 0, 0, 0xFF, 0xFF])
    return record(0x06, struct.pack("<HHH", row, column, 15) + value + bytes(6))


def stream(names: list[tuple[str, bool]], sheets: list[list[bytes]]) -> bytes:
    """A Workbook stream: globals listing *names*, then each sheet's records."""
    bof, eof = record(0x809, bytes(16)), record(0x0A, b"")
    globals_size = len(bof) + len(eof) + sum(len(bound_sheet(0, n, w)) for n, w in names)
    offsets, position = [], globals_size
    for cells in sheets:
        offsets.append(position)
        position += len(bof) + sum(map(len, cells)) + len(eof)
    head = (
        bof + b"".join(bound_sheet(o, n, w) for o, (n, w) in zip(offsets, names, strict=True)) + eof
    )
    return head + b"".join(bof + b"".join(cells) + eof for cells in sheets)


def test_errors_are_found_per_sheet_by_position() -> None:
    number = record(0x06, struct.pack("<HHH", 3, 0, 15) + struct.pack("<d", 5.0) + bytes(6))
    bool_err = record(0x205, struct.pack("<HHHBB", 4, 2, 15, 0x07, 1))
    boolean = record(0x205, struct.pack("<HHHBB", 5, 2, 15, 1, 0))  # TRUE, not an error
    data = stream(
        [("Cover", False), ("Códigos ✓", True)],
        [[], [formula(1, 0, 0x2A), number, bool_err, boolean, formula(6, 1, 0x99)]],
    )
    assert xls.scan(data) == {"Códigos ✓": {(1, 0): "#N/A", (4, 2): "#DIV/0!", (6, 1): "#ERROR"}}


def test_an_encrypted_workbook_is_not_scanned() -> None:
    data = stream([("Codes", False)], [[formula(1, 0, 0x2A)]])
    locked = data[:20] + record(0x2F, bytes(6)) + data[20:]
    assert xls.scan(locked) == {}


def test_a_file_that_is_not_ole_gives_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.xls"
    path.write_bytes(b"not an ole file")
    assert xls.check(path) == ({}, None)


def test_libreoffices_xls_formula_errors_are_refused_not_generated(tmp_path: Path) -> None:
    """A failed VLOOKUP in a code cell is a bad code, never an empty cell that generates one."""
    path = tmp_path / "partner.xls"
    shutil.copyfile(DATA / "formula_errors.xls", path)
    sheet = load(path, InputConfig())
    assert sheet.warnings == ()
    assert sheet.frame["code"].tolist() == ["#N/A", "#DIV/0!", "GOOD-001"]
    checked = validate(sheet, InputConfig(), dt.date(2026, 6, 15))
    assert [(i.row, i.code) for i in checked.issues] == [(2, "bad-code"), (3, "bad-code")]
    assert [r.code for r in checked.records] == ["GOOD-001"]


def test_far_cells_are_blanked_in_a_copy_and_the_copy_removed(tmp_path: Path) -> None:
    path = tmp_path / "stray.xls"
    shutil.copyfile(DATA / "stray_cell.xls", path)
    before = path.read_bytes()
    with guard.guarded(path, "xls") as plan:
        assert plan.path != path
        assert plan.warnings == (
            "sheet 'Codes': ignoring 1 cell(s) far from the data (IV65536); reading A1:C4",
        )
        checks, blanked = xls.check(plan.path)
        assert blanked is None  # the copy passes on its own
        assert (checks["Codes"].rows, checks["Codes"].columns) == (4, 3)
        copy = plan.path
    assert not copy.exists()
    assert path.read_bytes() == before  # the user's file is never touched


def test_a_clean_xls_is_read_in_place() -> None:
    plan = guard.plan(DATA / "formula_errors.xls", "xls")
    assert plan.path == DATA / "formula_errors.xls"
    assert plan.sheets["Codes"].errors == {(1, 0): "#N/A", (2, 0): "#DIV/0!"}
