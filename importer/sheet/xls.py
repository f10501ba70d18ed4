"""The Excel 97 (.xls) part of the workbook guard: where a sheet's values are, and its formula
errors, read from its BIFF8 records.

An .xls file is an OLE compound file (opened with ``olefile``, the library oletools and Pillow
rely on, instead of a reader of our own) whose ``Workbook`` stream is a run of records (MS-XLS
2.1.4: a type and a length, each two bytes, little-endian). The workbook globals list each
sheet's name and where its records start (BoundSheet8); in a sheet, each cell record starts
with its row and column. Two things are read from them:

- **Where the values are.** python-calamine builds a dense grid from the first to the last
  value, and an .xls grid may reach 65,536 x 256: one stray value at ``IV65536`` in a 6 KB file
  cost 17 s and 1.3 GB. The same judgement as for .xlsx (:func:`zipparts._judge`) decides;
  a few far values are blanked in a copy of the file (their record's type is changed to one no
  reader knows, in place, so no offset moves) and the copy is read, with a warning naming them.
- **Formula errors.** calamine gives a cell whose formula failed (``#N/A``) as an empty cell,
  and an empty code cell means "generate a code". A FORMULA record whose cached value is an
  error (MS-XLS 2.5.133: byte 0 is 2, bytes 6-7 are 0xFFFF, byte 2 is the error's code) and a
  BoolErr record holding one give the cell's text.

Rows and columns count from 0, as calamine's grid. An encrypted workbook (FilePass) is left to
calamine, which says it is password-protected.
"""

from __future__ import annotations

import shutil
import struct
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from importer.sheet.zipparts import NAMED, SheetCheck, WorkbookRefused, _judge, _reference

#: Record types (MS-XLS 2.3).
_EOF = 0x000A
_BOUND_SHEET = 0x0085
_FILE_PASS = 0x002F
_FORMULA = 0x0006
_BOOL_ERR = 0x0205
_MUL_RK = 0x00BD
#: Records holding one value cell, each starting with its row and column (2 bytes each).
_CELLS = frozenset({_FORMULA, 0x0203, 0x0204, _BOOL_ERR, 0x027E, 0x00FD, 0x00D6})
#: What a blanked far cell's record becomes: a type no BIFF8 reader knows, so it is skipped.
_BLANKED = 0x1FFF
#: The .xls grid.
_ROWS, _COLUMNS = 65_536, 256
#: BErr (MS-XLS 2.5.10) as Excel shows it; the same codes in .xlsb (MS-XLSB 2.5.97.2).
ERROR_TEXT = {
    0x00: "#NULL!",
    0x07: "#DIV/0!",
    0x0F: "#VALUE!",
    0x17: "#REF!",
    0x1D: "#NAME?",
    0x24: "#NUM!",
    0x2A: "#N/A",
    0x2B: "#GETTING_DATA",
}

Errors = dict[tuple[int, int], str]


@dataclass
class _Sheet:
    """One sheet's value cells: where each record is, and what it covers."""

    name: str
    rows: array[int] = field(default_factory=lambda: array("B", bytes(_ROWS)))
    columns: array[int] = field(default_factory=lambda: array("B", bytes(_COLUMNS)))
    cells: int = 0
    #: (record offset in the stream, row, first column, last column) of each value record.
    records: list[tuple[int, int, int, int]] = field(default_factory=list)
    errors: Errors = field(default_factory=dict)


def check(path: Path) -> tuple[dict[str, SheetCheck], bytes | None]:
    """Each sheet's check (its errors included), and the ``Workbook`` stream with its far cells
    blanked when some must be (None when the file is read as it is); raise
    :class:`WorkbookRefused` when the values are too many or too spread to be read."""
    found = _read(path)
    if found is None:
        return {}, None
    stream, sheets = found
    checks: dict[str, SheetCheck] = {}
    patched = bytearray(stream)
    blanked = False
    for sheet in sheets:
        judged = _judge(
            sheet.name, "Workbook", None, sheet.cells, sheet.rows, sheet.columns, [],
            exact_refs=True,
        )  # fmt: skip
        judged = replace(judged, errors=sheet.errors)
        if judged.kept_rows * judged.kept_columns < judged.rows * judged.columns:
            gone = _blank(patched, sheet, judged)
            judged = replace(judged, stray=tuple(gone[:NAMED]), stray_count=len(gone))
            blanked = True
        checks[sheet.name] = judged
    return checks, bytes(patched) if blanked else None


def write_copy(path: Path, stream: bytes, copy: Path) -> None:
    """*copy*: the workbook at *path* with *stream* (of the same length) as its Workbook."""
    import olefile  # type: ignore[import-untyped]  # imported here: only .xls needs it

    shutil.copyfile(path, copy)
    with olefile.OleFileIO(str(copy), write_mode=True) as ole:
        ole.write_stream(_stream_name(ole), stream)


def _blank(stream: bytearray, sheet: _Sheet, judged: SheetCheck) -> list[str]:
    """Blank the value records outside the kept area; their references."""
    gone: list[str] = []
    for offset, row, first, last in sheet.records:
        if row < judged.kept_rows and last < judged.kept_columns:
            continue
        if row < judged.kept_rows and first < judged.kept_columns:
            raise WorkbookRefused(
                f"sheet '{sheet.name}' has values far from its data that cannot be removed"
                " safely: delete them and save again"
            )
        struct.pack_into("<H", stream, offset, _BLANKED)
        gone.extend(_reference(row, column) for column in range(first, last + 1))
    return gone


def _read(path: Path) -> tuple[bytes, list[_Sheet]] | None:
    """The Workbook stream and its sheets' cells; None when the file is encrypted or its
    records cannot be followed (calamine then says what is wrong)."""
    import olefile  # imported here: only .xls needs it

    try:
        with olefile.OleFileIO(str(path)) as ole:
            stream: bytes = ole.openstream(_stream_name(ole)).read()
    except (OSError, ValueError, KeyError, struct.error):
        return None
    try:
        return _scan(stream)
    except (struct.error, IndexError, UnicodeDecodeError):
        return None


def _stream_name(ole: Any) -> str:  # olefile has no type information
    return next((n for n in ("Workbook", "Book") if ole.exists(n)), "Workbook")


def scan(stream: bytes) -> dict[str, Errors]:
    """The error cells of every sheet in a ``Workbook`` stream (empty when encrypted)."""
    found = _scan(stream)
    if found is None:
        return {}
    return {s.name: s.errors for s in found[1] if s.errors}


def _scan(stream: bytes) -> tuple[bytes, list[_Sheet]] | None:
    places: list[tuple[str, int]] = []
    for kind, start, body in _records(stream, 0):
        if kind == _FILE_PASS:
            return None  # encrypted: the records that follow are not readable as they are
        if kind == _BOUND_SHEET:
            places.append((_sheet_name(body), struct.unpack_from("<I", body)[0]))
        if kind == _EOF and start > 0:
            break
    return stream, [_sheet(stream, name, offset) for name, offset in places]


def _records(stream: bytes, offset: int) -> list[tuple[int, int, bytes]]:
    """(type, offset, body) of each record from *offset* to the end of its substream (EOF)."""
    out: list[tuple[int, int, bytes]] = []
    position = offset
    while position + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, position)
        out.append((kind, position, stream[position + 4 : position + 4 + length]))
        position += 4 + length
        if kind == _EOF:
            break
    return out


def _sheet_name(body: bytes) -> str:
    """BoundSheet8's stName: a ShortXLUnicodeString (a count, a flag, then the characters, one
    byte each unless the flag's low bit says two)."""
    count, flags = body[6], body[7]
    if flags & 1:
        return body[8 : 8 + 2 * count].decode("utf-16-le")
    return body[8 : 8 + count].decode("latin-1")


def _sheet(stream: bytes, name: str, offset: int) -> _Sheet:
    sheet = _Sheet(name)
    for kind, position, body in _records(stream, offset):
        if kind in _CELLS and len(body) >= 4:
            row, first = struct.unpack_from("<HH", body)
            last = first
        elif kind == _MUL_RK and len(body) >= 6:
            row, first = struct.unpack_from("<HH", body)
            (last,) = struct.unpack_from("<H", body, len(body) - 2)
        else:
            continue
        if last < first or last >= _COLUMNS:
            continue  # a damaged record: calamine refuses or skips it
        sheet.records.append((position, row, first, last))
        sheet.cells += last - first + 1
        sheet.rows[row] = 1
        for column in range(first, last + 1):
            sheet.columns[column] = 1
        if kind == _FORMULA and len(body) >= 14 and body[6] == 2 and body[12:14] == b"\xff\xff":
            sheet.errors[row, first] = ERROR_TEXT.get(body[8], "#ERROR")
        elif kind == _BOOL_ERR and len(body) >= 8 and body[7] == 1:
            sheet.errors[row, first] = ERROR_TEXT.get(body[6], "#ERROR")
    return sheet
