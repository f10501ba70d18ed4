"""Read a workbook (.xlsx, .xlsm, .xlsb, .xls, .ods) as rows of raw cells, with python-calamine.

What :mod:`importer.sheet.load` gets from here: the sheet to read (``--sheet``, else the first sheet
that has a header), its rows from row 1 down (blank rows above the data included, so row
numbers stay the ones the spreadsheet shows), and :func:`cell_text` to turn each cell into the
text a person sees in it. Formula cells hold the value the spreadsheet last computed, as shown.

Why python-calamine and not openpyxl: on the same 1,000,000-row workbook written by LibreOffice
(``python -m bench sheets``), openpyxl in read-only mode took 10-12x as long at nearly twice the
memory, and the cell types that matter come out the same (text stays text, date cells are
dates, numbers are numbers). calamine also reads OpenDocument, which openpyxl cannot. What it
cannot do: a formula that failed (``#N/A``) comes out as an empty cell; they are found in
the sheet's XML for .xlsx and .xlsm (:mod:`importer.sheet.errorcells`), in its records for
.xlsb (:mod:`importer.sheet.xlsb`) and .xls (:mod:`importer.sheet.xls`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.errors import InputError
from importer.sheet import guard, sniff
from importer.sheet.errorcells import error_cells
from importer.sheet.pasted import strip

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
#: Non-blank rows above the header (a title, a date, a note) that are looked past to find it.
MAX_ROWS_ABOVE_HEADER = 20

Cells = Sequence[object]


@dataclass(frozen=True)
class Grid:
    """One sheet: its name, and every row from row 1 down as raw cells (all rows equally wide)."""

    name: str
    rows: list[list[Any]]


def cell_text(value: object) -> str:
    """One cell as the text a person sees: dates as YYYY-MM-DD, whole numbers as digits.

    A code typed as a number is its digits (``12345``, never ``12345.0``); a quantity typed as
    ``5`` in a float cell is ``5``. A date-time cell is its date: codes expire on a day.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # every number in a workbook is a float: show 5.0 as 5
    return str(value)


def read_grid(
    path: Path,
    source: str,
    wanted: str | None,
    has_header: Callable[[list[list[str]]], bool],
    kind: sniff.Kind,
) -> tuple[Grid, tuple[str, ...]]:
    """The sheet named *wanted*, else the first sheet if *has_header* says it has a header, else
    the one other sheet that does (with a warning naming it); and the warnings.

    *has_header* gets a sheet's first rows as text. Several sheets with a header, none being
    the first, is an :class:`InputError` listing them: only the user knows which one is meant.
    """
    # Checked before calamine sees it: one far cell or a zip bomb would crash the process.
    try:
        plan = guard.plan(path, sniff.GUARD_KIND[kind])
    except guard.WorkbookRefused as exc:
        raise InputError(f"{source}: {exc}") from None
    try:
        grid, notes = _read_planned(plan, source, wanted, has_header, kind)
    finally:
        plan.cleanup()
    warned = tuple(f"{source}: {w}" for w in plan.warnings)
    return grid, warned + notes


def _read_planned(
    plan: guard.Plan,
    source: str,
    wanted: str | None,
    has_header: Callable[[list[list[str]]], bool],
    kind: sniff.Kind,
) -> tuple[Grid, tuple[str, ...]]:
    # Imported here: a CSV run need not load it.
    from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

    path = plan.path
    label = kind.value

    try:
        book = CalamineWorkbook.from_path(str(path))
    except BaseException as exc:
        _reraise_unless_unreadable(exc)
        raise InputError(f"{source}: not a readable {label} ({_first_line(exc)})") from None
    # Chart sheets hold no cells. Hidden sheets (lookup lists, old versions) are read when
    # named with --sheet, but never picked on their own: the user does not see them.
    sheets = [m for m in book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
    names = [m.name for m in sheets]
    shown = [m.name for m in sheets if m.visible == SheetVisibleEnum.Visible] or names
    if not names:
        raise InputError(f"{source}: the workbook has no sheets")

    scan = kind in (sniff.Kind.XLSX, sniff.Kind.XLSM)

    def grid(name: str) -> Grid:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Formula errors, which calamine reads as empty cells, are looked for meanwhile.
            errors = pool.submit(error_cells, path, name) if scan else None
            try:
                rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
            except BaseException as exc:
                _reraise_unless_unreadable(exc)
                raise InputError(
                    f"{source}: cannot read sheet '{name}' ({_first_line(exc)})"
                ) from None
            found = errors.result() if errors else {}
            if name in plan.sheets:
                found = {**found, **plan.sheets[name].errors}  # .xlsb, .xls: the guard's scan
            for (row, column), text in found.items():
                if row < len(rows) and column < len(rows[row]) and rows[row][column] == "":
                    rows[row][column] = text
        return Grid(name, rows)

    if wanted is not None:
        return grid(_named(source, names, wanted)), ()
    first = grid(shown[0])
    if has_header(head(first.rows)) or len(shown) == 1:
        return first, ()
    others = [grid(name) for name in shown[1:]]
    found = [g for g in others if has_header(head(g.rows))]
    if not found:
        return first, ()  # no sheet has one: the first sheet's own error says what is missing
    if len(found) > 1:
        listed = ", ".join(f"'{g.name}'" for g in found)
        raise InputError(
            f"{source}: the first sheet '{first.name}' has no header and several sheets have"
            f" one ({listed}); choose one with --sheet"
        )
    note = (
        f"{source}: the first sheet '{first.name}' has no header; reading sheet '{found[0].name}'"
    )
    return found[0], (note,)


def head(rows: list[list[Any]]) -> list[list[str]]:
    """The first rows as text, up to and including the first :data:`MAX_ROWS_ABOVE_HEADER` + 1
    non-blank ones (blank rows between them included, so positions stay row numbers)."""
    out: list[list[str]] = []
    filled = 0
    for row in rows:
        cells = [cell_text(v) for v in row]
        out.append(cells)
        filled += any(map(strip, cells))
        if filled > MAX_ROWS_ABOVE_HEADER:
            break
    return out


def _reraise_unless_unreadable(exc: BaseException) -> None:
    """Re-raise *exc* unless it is calamine saying the file cannot be read.

    calamine's errors arrive as several Python types, and a Rust panic on a malformed file as
    ``PanicException``, which derives from BaseException, not Exception; Ctrl-C must still stop.
    """
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        raise exc


def _named(source: str, names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    loose = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
    if len(loose) == 1:
        return loose[0]
    listed = ", ".join(f"'{n}'" for n in names)
    raise InputError(f"{source}: no sheet named '{wanted}' (sheets: {listed})")


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
