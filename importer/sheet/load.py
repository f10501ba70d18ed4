"""Read a marketing spreadsheet (.csv, .xlsx, .xlsm, .xlsb, .xls or .ods) into a frame of text
cells.

This module, :mod:`importer.sheet.csvs` (CSV text) and :mod:`importer.sheet.workbooks`
(workbooks) are the only ones that read files. The promise to the validator:

- every cell is ``str``: ``""`` when empty, never ``NaN``, never a number or a boolean
  (``00123``, ``NA``, ``NULL`` and ``TRUE`` are codes, not values to guess at); white space and
  zero-width characters at its ends trimmed (:func:`importer.sheet.pasted.strip`); a workbook's
  cells as they show (:func:`importer.sheet.workbooks.cell_text`);
- columns carry canonical names (:data:`COLUMNS`), matched loosely and through the configured
  aliases; unknown columns are dropped with one warning;
- an int column ``row`` holds the row number the spreadsheet shows (header = 1); fully blank rows
  keep their numbers but are dropped.

Anything that makes the file unusable is one :class:`~importer.errors.InputError` line naming the
file, never a traceback.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from importer.config import InputConfig
from importer.errors import InputError
from importer.models import ENTITLEMENT_KINDS, entitlement_field
from importer.sheet import sniff
from importer.sheet.csvs import read_bytes, read_csv
from importer.sheet.pasted import EDGES, address_kind, strip, zype_id
from importer.sheet.workbooks import (
    MAX_ROWS_ABOVE_HEADER,
    cell_text,
    head,
    read_grid,
)

#: One column per entitlement kind: video_id, playlist_id, plan_id, pass_plan_id.
ID_COLUMNS: tuple[str, ...] = tuple(entitlement_field(kind) for kind in ENTITLEMENT_KINDS)
#: The columns the validator understands.
COLUMNS = ("code", "expiration_date", *ID_COLUMNS, "entitlement_type", "entitlement_id", "quantity")
#: The columns of a list of codes (``revoke``): the code alone; every other column is ignored.
CODE_ONLY = ("code",)


@dataclass(frozen=True)
class Sheet:
    """The data rows of one spreadsheet, as text, under canonical column names (plus ``row``)."""

    source: str
    frame: pd.DataFrame
    warnings: tuple[str, ...] = ()


def normalise_header(name: str) -> str:
    """``"Promo-Code "`` -> ``"promocode"``: lower case, letters and digits only."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def header_lookup(
    aliases: Mapping[str, Iterable[str]], columns: tuple[str, ...] = COLUMNS
) -> dict[str, str]:
    """Normalised header -> canonical column (of *columns*); canonical names win over aliases,
    first over later."""
    lookup = {normalise_header(column): column for column in columns}
    for column, names in aliases.items():
        if column in columns:
            for name in names:
                lookup.setdefault(normalise_header(name), column)
    return lookup


def load(path: str | Path, config: InputConfig, *, columns: tuple[str, ...] = COLUMNS) -> Sheet:
    """Read *path* as what its content is (:func:`importer.sheet.sniff.decide`); raise
    :class:`InputError` (one line) if it cannot be used.

    *columns* are the columns wanted: :data:`COLUMNS` (a sheet of codes to create), or
    :data:`CODE_ONLY` (a list of codes: its header is the row naming the code column, the one
    column it requires; any other column is ignored with the usual warning).
    """
    with _collector_paused():
        return _load(path, config, columns)


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


def _load(path: str | Path, config: InputConfig, columns: tuple[str, ...]) -> Sheet:
    source = str(path)
    notes: tuple[str, ...] = ()
    is_header = _header_test(config.aliases, columns)
    body: _Body
    read_bytes(Path(path), source, 0)  # "no such file", "is a directory", as for CSV
    try:
        decision = sniff.decide(Path(path))  # the reader is chosen by content, not by name
    except sniff.NotASpreadsheet as exc:
        raise InputError(f"{source}: {exc}") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read file ({exc.strerror})") from None
    if decision.warning:
        notes = (f"{source}: {decision.warning}",)
    if decision.reader == "csv":
        header, header_row, frame, above = read_csv(Path(path), source, is_header)
        body = _FrameBody(frame)
        where = source
        if config.sheet is not None:
            notes += (f"{source}: a CSV file has no sheets; ignoring sheet '{config.sheet}'",)
    else:
        header, header_row, body, sheet_name, above, read = _read_workbook(
            Path(path), source, config.sheet, is_header, decision.kind
        )
        notes += read
        where = f"{source}, sheet '{sheet_name}'"
    if above:
        notes += (f"{where}: the header is row {header_row}; ignoring the {above} row(s) above it",)
    frame, unknown = _finish(where, header, header_row, body, config.aliases, columns)
    return Sheet(source=source, frame=frame, warnings=notes + unknown)


def _header_test(
    aliases: Mapping[str, Iterable[str]], columns: tuple[str, ...]
) -> Callable[[list[str]], bool]:
    """Whether a row's cells look like the header: two or more name known columns (one, for a
    list of codes).

    A sheet always has an expiration date and an entitlement column, and a title row above the
    header ("Spring campaign 2031") names none.
    """
    lookup = header_lookup(aliases, columns)
    least = min(2, len(columns))

    def is_header(cells: list[str]) -> bool:
        return len({lookup.get(normalise_header(c)) for c in cells} - {None}) >= least

    return is_header


def _read_workbook(
    path: Path,
    source: str,
    wanted: str | None,
    is_header: Callable[[list[str]], bool],
    kind: sniff.Kind,
) -> tuple[list[str], int, _Body, str, int, tuple[str, ...]]:
    """Like :func:`importer.sheet.csvs.read_csv`, for a workbook sheet (see
    :func:`importer.sheet.workbooks.read_grid`): header cells, the header's row number, the data
    rows, how many non-blank rows above the header were passed over; also the sheet's name and the
    warnings about which sheet was read."""
    read_bytes(path, source, 0)  # the same messages as CSV for a missing or unreadable file

    def has_header(rows: list[list[str]]) -> bool:
        return _header_in(rows, is_header) is not None

    grid, notes = read_grid(path, source, wanted, has_header, kind)
    rows = grid.rows
    first = head(rows)
    found = _header_in(first, is_header)
    if found is None:
        # No row looks like a header: the first non-blank one is taken, and its columns named.
        start = next((i for i, row in enumerate(first) if any(map(strip, row))), None)
        if start is None:
            raise InputError(f"{source}, sheet '{grid.name}': the sheet is empty")
        found = start, 0
    start, above = found
    return first[start], start + 1, _GridBody(rows, start + 1), grid.name, above, notes


def _header_in(
    rows: list[list[str]], is_header: Callable[[list[str]], bool]
) -> tuple[int, int] | None:
    """(index, non-blank rows above it) of the header among a sheet's first *rows*, if any."""
    filled = [i for i, row in enumerate(rows) if any(map(strip, row))]
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

    Taking only the columns asked for, one at a time, keeps a million-row sheet from ever
    existing twice as text.
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
    columns: tuple[str, ...],
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Map the header, trim the cells, drop blank rows, number the rest, read Zype addresses
    in the id columns as their ids."""
    lookup = header_lookup(aliases, columns)
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
    _check_required(where, known, aliases, columns)

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
    :func:`importer.sheet.pasted.strip`)."""
    # Mapping str.strip is several times faster than .str.strip(), and filling the array from
    # the iterator skips a list (half the cost at a million rows). Most cells come back
    # unchanged (str.strip returns the same object), so this costs little memory. On ASCII
    # text, the plain strip() removes the same characters at two thirds of the cost, and one
    # look at the whole column tells whether it is all ASCII.
    if "".join(cells).isascii():
        return np.fromiter(map(str.strip, cells), dtype=object, count=len(cells))
    return np.fromiter(
        map(str.strip, cells, itertools.repeat(EDGES)), dtype=object, count=len(cells)
    )


#: Rows named in the warning about ids read from addresses; the rest are counted.
_ROWS_NAMED = 5


def _read_addresses(where: str, frame: pd.DataFrame, column: str, name: str) -> tuple[str, ...]:
    """Replace, in *column*, each Zype address holding one id by that id; warn if any was.

    Someone who copies an id from the admin's address bar takes the whole address with it; the
    id in it is unambiguous, but the user should know it was read out of an address. An address
    of another kind than the column (a playlist's in the video column) is left as it is, for the
    validator to refuse: the row says two different things.
    """
    values = frame[column].to_numpy(dtype=object)
    # Ids are 24 characters: only longer cells can be addresses, and there are usually none.
    longer = np.fromiter(map(len, values), dtype=np.int64, count=len(values)) > 24
    distinct = set(values[longer])
    kind = column.removesuffix("_id") if column in ID_COLUMNS else None
    ids = {v: found for v in distinct if (found := zype_id(v)) and _fits(v, kind)}
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


def _fits(address: str, kind: str | None) -> bool:
    """Whether *address* may stand in a column of *kind* (None: entitlement_id, any kind)."""
    named = address_kind(address)
    return kind is None or named is None or named == kind


def _check_required(
    where: str, known: Mapping[str, int], aliases: Mapping[str, Any], wanted: tuple[str, ...]
) -> None:
    def accepted(*columns: str) -> str:
        names = [c for column in columns for c in (column, *aliases.get(column, ()))]
        return ", ".join(_display(n) for n in dict.fromkeys(names))

    if wanted == CODE_ONLY:
        if "code" not in known:
            raise InputError(
                f"{where}: missing column 'code' (accepted headers: {accepted('code')})"
            )
        return
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
