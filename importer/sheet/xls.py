"""Formula errors of an Excel 97 workbook (.xls), read from its BIFF8 records.

python-calamine gives a cell whose formula failed (``#N/A``, ``#DIV/0!``) as an empty cell, and
an empty code cell means "generate a code": a failed lookup in a partner's old template would
silently become a random code. The .xls file keeps the error: it is an OLE compound file
(opened with ``olefile``, the library oletools and Pillow rely on, instead of a reader of our
own) whose ``Workbook`` stream is a run of records (MS-XLS 2.1.4: a type and a length, each two
bytes, little-endian). The workbook globals list each sheet's name and where its records start
(BoundSheet8); in a sheet, a FORMULA record whose cached value is an error (MS-XLS 2.5.133:
byte 0 is 2, bytes 6-7 are 0xFFFF, byte 2 is the error's code) and a BoolErr record holding an
error give the cell's row, column and text. Rows and columns count from 0, as calamine's grid.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: Record types (MS-XLS 2.3).
_BOF = 0x0809
_EOF = 0x000A
_BOUND_SHEET = 0x0085
_FILE_PASS = 0x002F
_FORMULA = 0x0006
_BOOL_ERR = 0x0205
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


def error_cells(path: Path) -> dict[str, Errors]:
    """Sheet name -> (row, column) -> error text, for the cells holding one; empty when there
    are none, or the file is encrypted or cannot be read as records (calamine has read it)."""
    import olefile  # type: ignore[import-untyped]  # imported here: only .xls needs it

    try:
        with olefile.OleFileIO(str(path)) as ole:
            name = next((n for n in ("Workbook", "Book") if ole.exists(n)), None)
            if name is None:
                return {}
            stream: bytes = ole.openstream(name).read()
    except (OSError, ValueError, struct.error):
        return {}
    try:
        return scan(stream)
    except (struct.error, IndexError, UnicodeDecodeError):
        return {}


def scan(stream: bytes) -> dict[str, Errors]:
    """The error cells of every sheet in a ``Workbook`` stream."""
    sheets: list[tuple[str, int]] = []
    for kind, start, body in _records(stream, 0):
        if kind == _FILE_PASS:
            return {}  # encrypted: the records that follow are not readable as they are
        if kind == _BOUND_SHEET:
            sheets.append((_sheet_name(body), struct.unpack_from("<I", body)[0]))
        if kind == _EOF and start > 0:
            break
    found: dict[str, Errors] = {}
    for sheet, offset in sheets:
        errors = _sheet_errors(stream, offset)
        if errors:
            found[sheet] = errors
    return found


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


def _sheet_errors(stream: bytes, offset: int) -> Errors:
    errors: Errors = {}
    for kind, _, body in _records(stream, offset):
        if kind == _FORMULA and len(body) >= 14:
            if body[6] == 2 and body[12:14] == b"\xff\xff":
                row, column = struct.unpack_from("<HH", body)
                errors[row, column] = ERROR_TEXT.get(body[8], "#ERROR")
        elif kind == _BOOL_ERR and len(body) >= 8 and body[7] == 1:
            row, column = struct.unpack_from("<HH", body)
            errors[row, column] = ERROR_TEXT.get(body[6], "#ERROR")
    return errors
