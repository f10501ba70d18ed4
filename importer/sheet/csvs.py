"""Read a CSV file as marketing's tools write it: header cells, the header's row, raw rows.

Encoding (UTF-8 with or without BOM, UTF-16 from Excel's "Unicode Text", else cp1252), the
delimiter (Excel's ``sep=`` line, else the header's most used of comma, semicolon and tab) and
the header (the first of the first non-blank rows that looks like one, passing over titles and
notes) are found here; :mod:`importer.sheet.load` maps the columns. Every cell is read as text.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from importer.errors import InputError
from importer.sheet.workbooks import MAX_ROWS_ABOVE_HEADER

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_DELIMITERS = (",", ";", "\t")
_QUOTED = re.compile(r'"[^"]*"')
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
_SEP_HINT = re.compile(r"sep=([,;\t|])")
_PARSER_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_bytes(path: Path, source: str, size: int = -1) -> bytes:
    """Up to *size* bytes of the file (all by default), or a one-line error."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a spreadsheet") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read file ({exc.strerror})") from None


def read_csv(
    path: Path, source: str, is_header: Callable[[list[str]], bool]
) -> tuple[list[str], int, pd.DataFrame, int]:
    """Header cells, the header's row number, the raw data rows (positional columns) and how
    many non-blank rows above the header were passed over."""
    data = read_bytes(path, source)
    encoding = _encoding(data, source)
    head = data[: 1 << 16].decode(encoding, errors="ignore")
    blank, offset, header_line, hint, above = _preamble(head, is_header)
    if header_line is None:
        raise InputError(f"{source}: no header row")
    options: dict[str, Any] = {
        "sep": hint or _sniff_delimiter(header_line),
        "header": None,
        # Cells are text: no type guessing, and no "NA"/"NULL"/"" turned into missing values.
        # Plain Python strings (object) rather than pandas' string dtype: the cells are taken
        # out as Python strings right away, and wrapping them first costs 0.15 s a million rows.
        "dtype": object,
        "keep_default_na": False,
        "na_filter": False,
        # Blank lines must stay, so that the rows after them keep the numbers Excel shows.
        "skip_blank_lines": False,
        "engine": "c",
    }
    reader: Any = path
    if offset:
        # The C parser cannot skip leading lines itself (it infers the width from line 1).
        reader = io.StringIO(data.decode(encoding)[offset:])
    else:
        options["encoding"] = encoding
    del data
    try:
        raw = pd.read_csv(reader, **options)
    except pd.errors.ParserError as exc:
        lines_before = blank + (hint is not None)
        raise InputError(f"{source}: {_parser_message(str(exc), lines_before)}") from None
    except (pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"{source}: cannot be read as CSV ({_first_line(exc)})") from None
    header = [str(cell) for cell in raw.iloc[0]] if len(raw) else []
    return header, blank + 1, raw.iloc[1:], above


def _encoding(data: bytes, source: str) -> str:
    """The file's text encoding, or a one-line error for a file that is not CSV text."""
    if not data.strip():
        raise InputError(f"{source}: the file is empty")
    if data.startswith(b"PK\x03\x04"):
        raise InputError(f"{source}: this is an Excel workbook, not CSV text (name it .xlsx)")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates: tuple[str, ...] = ("utf-16",)  # Excel's "Unicode Text" export
    elif b"\x00" in data:
        raise InputError(f"{source}: not a text file (binary content)")
    elif data.isascii():
        return "utf-8"
    else:
        # Excel on Windows saves "CSV" as cp1252 unless told otherwise; UTF-8 goes first
        # because valid UTF-8 with accents is almost never meant as cp1252.
        candidates = ("utf-8-sig", "cp1252")
    for encoding in candidates:
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    raise InputError(f"{source}: not text in UTF-8, UTF-16 or Windows-1252")


def _preamble(
    head: str, is_header: Callable[[list[str]], bool]
) -> tuple[int, int, str | None, str | None, int]:
    """What precedes the header: (rows before it, their length in chars, header line, delimiter,
    non-blank rows passed over).

    The header is the first of the first non-blank lines that looks like one (see
    :func:`_header_test`), else the first non-blank line, whose columns are then reported. The
    delimiter comes from an Excel ``sep=;`` first line, which Excel itself hides (so it takes no
    row number), else it is ``None``. A line is a spreadsheet row: a quoted cell with a line
    break in it (a header written on two lines) continues it.
    """
    before = offset = 0
    hint = None
    # (rows before it, chars before it, text) of the first non-blank lines: header candidates.
    candidates: list[tuple[int, int, str]] = []
    for number, line in enumerate(_rows_of(head + "\n")):
        found = _SEP_HINT.fullmatch(line.strip("\r\n")) if number == 0 else None
        if found:
            hint = found.group(1)
        else:
            if line.strip(" \t\r\n,;"):
                candidates.append((before, offset, line.rstrip("\r\n")))
                if len(candidates) > MAX_ROWS_ABOVE_HEADER:
                    break
            before += 1
        offset += len(line)
        if offset >= len(head):
            break
    if not candidates:
        return before, offset, None, hint, 0
    rows = [_cells(text, hint or _sniff_delimiter(text)) for *_, text in candidates]
    above = _rows_above_header(rows, is_header)
    return (*candidates[above], hint, above)


def _cells(row: str, delimiter: str) -> list[str]:
    """One row's cells, as well as they can be told apart (pandas judges the file itself)."""
    try:
        return next(csv.reader(io.StringIO(row, newline=""), delimiter=delimiter), [])
    except csv.Error:  # a stray quote or line break: not a header, whatever else it is
        return [row]


def _rows_of(text: str) -> Iterator[str]:
    """*text*'s rows with their line endings: its lines, those inside quotes joined."""
    row = ""
    for match in _LINE.finditer(text):
        row += match.group()
        if row.count('"') % 2 == 0:  # an escaped quote is two: only an open cell leaves one
            yield row
            row = ""
    if row:
        yield row


def _rows_above_header(candidates: list[list[str]], is_header: Callable[[list[str]], bool]) -> int:
    """Which of the first non-blank rows is the header: the first that looks like one, else the
    first (whose columns are then reported); as the count of candidates above it."""
    return next((n for n, cells in enumerate(candidates) if is_header(cells)), 0)


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter used most often in the header line, outside quotes; ties go to the comma."""
    bare = _QUOTED.sub("", header_line)
    counts = [bare.count(d) for d in _DELIMITERS]
    return _DELIMITERS[counts.index(max(counts))]


def _parser_message(text: str, skipped: int) -> str:
    found = _PARSER_LINE.search(text)
    if found:
        expected, line, saw = (int(g) for g in found.groups())
        return f"line {line + skipped} has {saw} cells but the header has {expected}"
    if "EOF inside string" in text:
        return "a quoted cell is never closed (check the quote marks)"
    return f"cannot be read as CSV ({_first_line(text)})"


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
