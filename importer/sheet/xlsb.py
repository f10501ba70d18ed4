"""The .xlsb (BIFF12) part of the workbook guard: where a binary sheet's values are, and its
error cells, read from its records (python-calamine gives a formula error as an empty cell).

Standard library only.
"""

from __future__ import annotations

import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import replace

from importer.sheet.xls import ERROR_TEXT
from importer.sheet.zipparts import (
    MAX_COLUMNS,
    MAX_OTHER_BYTES,
    MAX_ROWS,
    MAX_RUN_BYTES,
    MAX_SHEET_BYTES,
    MAX_STRAY_CELLS,
    SheetCheck,
    WorkbookRefused,
    _chunks,
    _judge,
    _reference,
)

# --- xlsb --------------------------------------------------------------------------------------

#: BIFF12 record types (MS-XLSB 2.3.2): a row header, then the cells of that row.
_ROW_HEADER = 0
_LONG_CELLS = frozenset({*range(1, 12), 62})  # BrtCellBlank..BrtFmlaError, BrtCellRString
_SHORT_CELLS = frozenset(range(12, 19))  # BrtShortBlank..BrtShortIsst
_BLANKS = frozenset({1, 12})
_ERRORS = frozenset({3, 11, 14})


def _check_xlsb_sheet(archive: zipfile.ZipFile, name: str, part: str) -> SheetCheck:
    """The same marks for a binary sheet, from its records (MS-XLSB 2.2.1: a type and a size,
    each a little-endian base-128 number): BrtRowHdr sets the row; a cell record's first 4
    bytes are its column (a "short" cell, types 12-18, is the column after the previous one).
    Error cells (BrtCellError, BrtFmlaError, BrtShortError) are kept with their text, as
    calamine gives them as empty cells. Far cells are refused, not dropped: rewriting a binary
    part is not worth it for a format this rare."""
    rows: array[int] = array("B", bytes(MAX_ROWS))
    columns: array[int] = array("B", bytes(MAX_COLUMNS))
    beyond: list[str] = []
    errors: dict[tuple[int, int], str] = {}
    row = cells = 0
    column = -1
    buffer = b""
    position = 0
    for chunk in _chunks(archive, part, MAX_SHEET_BYTES):
        buffer = buffer[position:] + chunk
        position = 0
        while (record := _record(buffer, position)) is not None:
            kind, start, end = record
            if end - start > MAX_RUN_BYTES:
                raise WorkbookRefused(f"sheet '{name}' holds an over-long record")
            if end > len(buffer):
                break
            position = end
            if kind == _ROW_HEADER and end - start >= 4:
                row = int.from_bytes(buffer[start : start + 4], "little")
                column = -1
                continue
            if kind in _LONG_CELLS and end - start >= 4:
                column = int.from_bytes(buffer[start : start + 4], "little")
                payload = start + 8
            elif kind in _SHORT_CELLS:
                column += 1
                payload = start + 4
            else:
                continue
            if kind in _BLANKS:
                continue
            cells += 1
            if row < MAX_ROWS and column < MAX_COLUMNS:
                rows[row] = columns[column] = 1
                if kind in _ERRORS and payload < end:
                    errors[(row, column)] = ERROR_TEXT.get(buffer[payload], "#N/A")
            elif len(beyond) <= MAX_STRAY_CELLS:
                beyond.append(_reference(min(row, 1 << 24), min(column, 1 << 16)))
    check = _judge(name, part, None, cells, rows, columns, beyond, exact_refs=True)
    if check.kept_rows * check.kept_columns < check.grid or beyond:
        far = _reference(check.rows - 1, check.columns - 1)
        raise WorkbookRefused(
            f"sheet '{name}' has values far from its data (up to {far}): delete them"
            " (Ctrl+End in Excel shows the last one) and save again"
        )
    return replace(check, errors=errors)


def _xlsb_sheets(archive: zipfile.ZipFile) -> Iterator[tuple[str, str]]:
    """(relationship id, sheet name) of each BrtBundleSh record (type 156) of workbook.bin:
    hsState and iTabID (4 bytes each), then two XLWideStrings (a 4-byte count of UTF-16
    characters, then the characters)."""
    data = b"".join(_chunks(archive, "xl/workbook.bin", MAX_OTHER_BYTES))
    position = 0
    while (record := _record(data, position)) is not None and record[2] <= len(data):
        kind, start, end = record
        position = end
        if kind != 156:
            continue
        texts: list[str] = []
        at = start + 8
        for _ in range(2):
            count = int.from_bytes(data[at : at + 4], "little")
            texts.append(data[at + 4 : at + 4 + 2 * count].decode("utf-16-le", "replace"))
            at += 4 + 2 * count
        if at <= end:
            yield texts[0], texts[1]


def _record(buffer: bytes, position: int) -> tuple[int, int, int] | None:
    """(type, payload start, payload end) of the record at *position*, or None if cut."""
    kind, position = _varint(buffer, position, 2)
    if kind < 0:
        return None
    size, position = _varint(buffer, position, 4)
    if size < 0:
        return None
    return kind, position, position + size


def _varint(buffer: bytes, position: int, most: int) -> tuple[int, int]:
    value = 0
    for shift in range(most):
        if position >= len(buffer):
            return -1, position
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << (7 * shift)
        if not byte & 0x80:
            return value, position
    return value, position
