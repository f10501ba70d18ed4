"""Read a marketing spreadsheet (.csv, .xlsx or .ods) into a frame of text cells.

This module and :mod:`importer.sheets` (workbooks) are the only ones that read files. The
promise to the validator:

- every cell is ``str``: ``""`` when empty, never ``NaN``, never a number or a boolean
  (``00123``, ``NA``, ``NULL`` and ``TRUE`` are codes, not values to guess at); white space and
  zero-width characters at its ends trimmed (:func:`importer.pasted.strip`); a workbook's cells
  as they show (:func:`importer.sheets.cell_text`);
- columns carry canonical names (:data:`COLUMNS`), matched loosely and through the configured
  aliases; unknown columns are dropped with one warning;
- an int column ``row`` holds the row number the spreadsheet shows (header = 1); fully blank rows
  keep their numbers but are dropped.

Anything that makes the file unusable is one :class:`~importer.errors.InputError` line naming the
file, never a traceback.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from importer.config import InputConfig
from importer.errors import InputError
from importer.models import ENTITLEMENT_KINDS, entitlement_field
from importer.pasted import EDGES, strip, zype_id
from importer.sheets import MAX_ROWS_ABOVE_HEADER, WORKBOOK_SUFFIXES, cell_text, head, read_grid

#: One column per entitlement kind: video_id, playlist_id, plan_id, pass_plan_id.
ID_COLUMNS: tuple[str, ...] = tuple(entitlement_field(kind) for kind in ENTITLEMENT_KINDS)
#: The columns the validator understands.
COLUMNS = ("code", "expiration_date", *ID_COLUMNS, "entitlement_type", "entitlement_id", "quantity")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_DELIMITERS = (",", ";", "\t")
_QUOTED = re.compile(r'"[^"]*"')
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
_SEP_HINT = re.compile(r"sep=([,;\t|])")
_PARSER_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass(frozen=True)
class Sheet:
    """The data rows of one spreadsheet, as text, under canonical column names (plus ``row``)."""

    source: str
    frame: pd.DataFrame
    warnings: tuple[str, ...] = ()


def normalise_header(name: str) -> str:
    """``"Promo-Code "`` -> ``"promocode"``: lower case, letters and digits only."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def header_lookup(aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Normalised header -> canonical column; canonical names win over aliases, first over later."""
    lookup = {normalise_header(column): column for column in COLUMNS}
    for column, names in aliases.items():
        for name in names:
            lookup.setdefault(normalise_header(name), column)
    return lookup


def load(path: str | Path, config: InputConfig) -> Sheet:
    """Read *path* by its extension; raise :class:`InputError` (one line) if it cannot be used."""
    with _collector_paused():
        return _load(path, config)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a sheet is read.

    A million-row workbook arrives as a million lists; every few thousand new objects set off a
    collection that walks all the lists made so far: calamine's ``to_python`` took 1.2 s with
    the collector running and 0.4 s without. Cells are strings, numbers and dates, which
    hold no cycles, so nothing is left for the collector to find.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _load(path: str | Path, config: InputConfig) -> Sheet:
    source = str(path)
    suffix = Path(path).suffix.lower()
    notes: tuple[str, ...] = ()
    is_header = _header_test(config.aliases)
    body: _Body
    if suffix in CSV_SUFFIXES:
        header, header_row, frame, above = _read_csv(Path(path), source, is_header)
        body = _FrameBody(frame)
        where = source
        if config.sheet is not None:
            notes = (f"{source}: a CSV file has no sheets; ignoring sheet '{config.sheet}'",)
    elif suffix in WORKBOOK_SUFFIXES:
        header, header_row, body, sheet_name, above, notes = _read_workbook(
            Path(path), source, config.sheet, is_header
        )
        where = f"{source}, sheet '{sheet_name}'"
    else:
        kind = f"file type '{suffix}'" if suffix else "file without an extension"
        raise InputError(f"{source}: unsupported {kind} (use .csv, .xlsx or .ods)")
    if above:
        notes += (f"{where}: the header is row {header_row}; ignoring the {above} row(s) above it",)
    frame, unknown = _finish(where, header, header_row, body, config.aliases)
    return Sheet(source=source, frame=frame, warnings=notes + unknown)


def _read_bytes(path: Path, source: str, size: int = -1) -> bytes:
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


def _read_csv(
    path: Path, source: str, is_header: Callable[[list[str]], bool]
) -> tuple[list[str], int, pd.DataFrame, int]:
    """Header cells, the header's row number, the raw data rows (positional columns) and how
    many non-blank rows above the header were passed over."""
    data = _read_bytes(path, source)
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


def _header_test(aliases: Mapping[str, Iterable[str]]) -> Callable[[list[str]], bool]:
    """Whether a row's cells look like the header: two or more name known columns.

    A sheet always has an expiration date and an entitlement column, and a title row above the
    header ("Spring campaign 2031") names none.
    """
    lookup = header_lookup(aliases)

    def is_header(cells: list[str]) -> bool:
        return len({lookup.get(normalise_header(c)) for c in cells} - {None}) >= 2

    return is_header


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


def _read_workbook(
    path: Path, source: str, wanted: str | None, is_header: Callable[[list[str]], bool]
) -> tuple[list[str], int, _Body, str, int, tuple[str, ...]]:
    """Like :func:`_read_csv`, for a workbook sheet (see :func:`importer.sheets.read_grid`);
    also the sheet's name and the warnings about which sheet was read."""
    _read_bytes(path, source, 0)  # the same messages as CSV for a missing or unreadable file

    def has_header(rows: list[list[str]]) -> bool:
        return _header_in(rows, is_header) is not None

    grid, notes = read_grid(path, source, wanted, has_header)
    rows = grid.rows
    first = head(rows)
    found = _header_in(first, is_header)
    if found is None:
        # No row looks like a header: the first non-blank one is taken, and its columns named.
        start = next((i for i, row in enumerate(first) if any(c.strip() for c in row)), None)
        if start is None:
            raise InputError(f"{source}, sheet '{grid.name}': the sheet is empty")
        found = start, 0
    start, above = found
    return first[start], start + 1, _GridBody(rows, start + 1), grid.name, above, notes


def _header_in(
    rows: list[list[str]], is_header: Callable[[list[str]], bool]
) -> tuple[int, int] | None:
    """(index, non-blank rows above it) of the header among a sheet's first *rows*, if any."""
    filled = [i for i, row in enumerate(rows) if any(c.strip() for c in row)]
    for above, index in enumerate(filled[: MAX_ROWS_ABOVE_HEADER + 1]):
        if is_header(rows[index]):
            return index, above
    return None


class _Body(Protocol):
    """The data rows under the header, one column at a time."""

    def __len__(self) -> int: ...

    def column(self, position: int) -> np.ndarray:
        """The cells at *position* (0-based) as an object array of ``str``, not yet trimmed."""
        ...


class _FrameBody:
    """A CSV's rows, as pandas read them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def __len__(self) -> int:
        return len(self._frame)

    def column(self, position: int) -> np.ndarray:
        if position >= self._frame.shape[1]:
            return np.full(len(self._frame), "", dtype=object)
        return self._frame.iloc[:, position].to_numpy(dtype=object)


class _GridBody:
    """A workbook sheet's rows from *start* on, as calamine gave them; cells made text per column.

    Taking a column at a time (only the known ones, and the others only where the known ones
    are blank) keeps a million-row sheet from ever existing twice as text.
    """

    def __init__(self, rows: list[list[Any]], start: int) -> None:
        self._rows = rows
        self._start = start

    def __len__(self) -> int:
        return max(len(self._rows) - self._start, 0)

    def column(self, position: int) -> np.ndarray:
        rows = itertools.islice(self._rows, self._start, None)
        cells = np.fromiter(map(operator.itemgetter(position), rows), dtype=object, count=len(self))
        # Most cells are text already; only the others (dates, numbers) go through cell_text.
        # Mapping type() is C-speed; a Python-level test of each cell took 0.2 s a million.
        if pd.api.types.infer_dtype(cells, skipna=False) == "string":
            return cells  # all text: the usual case for codes and ids, answered at C speed
        kinds = np.fromiter(map(type, cells), dtype=object, count=cells.size)
        for kind in set(kinds) - {str}:
            # A column holds few distinct dates or numbers: each is made text once. One type at
            # a time, as hashing equates True, 1 and 1.0, which show differently.
            these = np.flatnonzero(kinds == kind)
            which, distinct = pd.factorize(cells[these])
            cells[these] = np.array([cell_text(v) for v in distinct], dtype=object)[which]
        return cells


def _finish(
    where: str,
    header: list[str],
    header_row: int,
    body: _Body,
    aliases: Mapping[str, Iterable[str]],
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Map the header, trim the cells, drop blank rows, number the rest, read Zype addresses
    in the id columns as their ids."""
    lookup = header_lookup(aliases)
    known: dict[str, int] = {}
    unknown: list[int] = []
    for position, name in enumerate(header):
        column = lookup.get(normalise_header(name))
        if column is None:
            unknown.append(position)
        elif column in known:
            first = header[known[column]].strip()
            raise InputError(
                f"{where}: columns '{first}' and '{name.strip()}' both mean '{column}'"
            )
        else:
            known[column] = position
    _check_required(where, known, aliases)

    cells = {column: _strip(body.column(position)) for column, position in known.items()}
    filled = np.zeros(len(body), dtype=bool)
    for values in cells.values():
        filled |= values != ""
    noted: list[str] = []
    for position in unknown:
        # A line with text only in an ignored column is not blank: it still gets a result line.
        values = body.column(position)
        empty = np.flatnonzero(~filled)
        filled[empty] = [bool(strip(v)) for v in values[empty]]
        if strip(header[position]):
            noted.append(" ".join(header[position].split()))  # a header on two lines, one line
        elif any(strip(v) for v in values):
            noted.append(f"(unnamed column {position + 1})")
    keep = np.flatnonzero(filled)
    if keep.size < filled.size:
        cells = {column: values[keep] for column, values in cells.items()}
    frame = pd.DataFrame(cells, index=pd.RangeIndex(keep.size), dtype=str)
    # Body line i is the spreadsheet row just below the header, plus i.
    frame["row"] = keep.astype(np.int64) + header_row + 1
    notes: tuple[str, ...] = ()
    if noted:
        names = ", ".join(dict.fromkeys(noted))
        notes = (f"{where}: ignoring unknown columns: {names}",)
    for column in (*ID_COLUMNS, "entitlement_id"):
        if column in frame:
            notes += _read_addresses(where, frame, column, header[known[column]])
    return frame, notes


def _strip(cells: np.ndarray) -> np.ndarray:
    """Each cell without white space or zero-width characters at its ends (see
    :func:`importer.pasted.strip`)."""
    # Mapping str.strip is several times faster than .str.strip(), and filling the array from
    # the iterator skips a list (half the cost at a million rows). Most cells come back
    # unchanged (str.strip returns the same object), so this costs little memory.
    return np.fromiter(
        map(str.strip, cells, itertools.repeat(EDGES)), dtype=object, count=len(cells)
    )


#: Rows named in the warning about ids read from addresses; the rest are counted.
_ROWS_NAMED = 5


def _read_addresses(where: str, frame: pd.DataFrame, column: str, name: str) -> tuple[str, ...]:
    """Replace, in *column*, each Zype address holding one id by that id; warn if any was.

    Someone who copies an id from the admin's address bar takes the whole address with it; the
    id in it is unambiguous, but the user should know it was read out of an address.
    """
    values = frame[column].to_numpy(dtype=object)
    # Ids are 24 characters: only longer cells can be addresses, and there are usually none.
    longer = np.fromiter(map(len, values), dtype=np.int64, count=len(values)) > 24
    distinct = set(values[longer])
    ids = {v: found for v in distinct if (found := zype_id(v)) is not None}
    if not ids:
        return ()
    hits = np.fromiter((v in ids for v in values), dtype=bool, count=len(values))
    values = values.copy()
    values[hits] = [ids[v] for v in values[hits]]
    frame[column] = values
    rows = frame["row"].to_numpy()[hits].tolist()
    listed = ", ".join(map(str, rows[:_ROWS_NAMED]))
    if len(rows) > _ROWS_NAMED:
        listed += f" and {len(rows) - _ROWS_NAMED} more"
    return (
        f"{where}: column '{strip(name)}' holds Zype addresses; read as the id in each"
        f" (row{'s' if len(rows) > 1 else ''} {listed})",
    )


def _check_required(where: str, known: Mapping[str, int], aliases: Mapping[str, Any]) -> None:
    def accepted(*columns: str) -> str:
        names = [c for column in columns for c in (column, *aliases.get(column, ()))]
        return ", ".join(_display(n) for n in dict.fromkeys(names))

    if "expiration_date" not in known:
        raise InputError(
            f"{where}: missing column 'expiration_date'"
            f" (accepted headers: {accepted('expiration_date')})"
        )
    if any(c in known for c in ID_COLUMNS):
        return
    if "entitlement_type" in known and "entitlement_id" in known:
        return
    if "entitlement_type" in known or "entitlement_id" in known:
        missing = "entitlement_id" if "entitlement_type" in known else "entitlement_type"
        raise InputError(
            f"{where}: missing column '{missing}' (accepted headers: {accepted(missing)})"
        )
    raise InputError(
        f"{where}: no entitlement column: need one of video_id, playlist_id, plan_id,"
        f" pass_plan_id, or entitlement_type with entitlement_id"
        f" (accepted headers: {accepted(*ID_COLUMNS)})"
    )


def _display(name: str) -> str:
    """``"video id"`` -> ``"Video ID"``; canonical snake_case names are shown as they are."""
    if "_" in name:
        return name
    return " ".join("ID" if w.lower() == "id" else w[:1].upper() + w[1:] for w in name.split())
