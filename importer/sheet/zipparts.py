"""The pieces the workbook guard (:mod:`importer.sheet.guard`) shares with the .xlsb scanner
(:mod:`importer.sheet.xlsb`): the limits, the refusal, what one sheet's scan found, the
zip checks (declared sizes, inflation counted while streaming, entity declarations), and the
judgement of a sheet's extent (read as it is, drop a few far cells, or refuse).

Standard library only: safe to import before python-calamine.
"""

from __future__ import annotations

import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from importer.errors import InputError

#: Excel's grid.
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
#: Grid cells calamine may allocate for one sheet (1,048,576 rows x 16 columns).
MAX_GRID_CELLS = 1 << 24
#: A sheet always gets this many grid cells (80 MB); beyond it, up to 4 per value cell.
GRID_FLOOR = 2_000_000
GRID_PER_VALUE = 4
#: Far-away values that are dropped with a warning; more is refused (they may be real data).
MAX_STRAY_CELLS = 100
#: Blank rows / columns that end the data area when the grid is over budget.
ROW_GAP = 1_000
COLUMN_GAP = 100
#: Inflated size of one sheet part / of any other part / of all parts read.
MAX_SHEET_BYTES = 1 << 30
MAX_OTHER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 3 << 29
#: Text all cells of a sheet hold (shared strings are copied into every cell that uses them).
MAX_TEXT_BYTES = 512 << 20
#: Excel 97 workbooks above this size on disk are refused.
MAX_XLS_BYTES = 256 << 20
#: Excel's longest cell text is 32,767 characters; a text run far longer is no spreadsheet.
MAX_RUN_BYTES = 1 << 20
#: Stray cells named in a warning.
NAMED = 5

#: Parts calamine does not read (their size is no concern of this module).
_UNREAD = ("xl/media/", "xl/embeddings/", "xl/printerSettings/", "docProps/", "Pictures/")
_CHUNK = 1 << 22


class WorkbookRefused(InputError):
    """A workbook that must not be handed to calamine; ``str()`` is one line, without the path."""


@dataclass(frozen=True)
class SheetCheck:
    """What the scan found in one worksheet (rows and columns from 0)."""

    name: str
    part: str
    declared: str | None  # the <dimension ref> as written (calamine ignores it)
    cells: int  # cells holding a value (conservatively: every cell element with content)
    rows: int  # grid rows calamine builds: last value row + 1
    columns: int
    kept_rows: int  # the area read: rows 0..kept_rows-1, columns 0..kept_columns-1
    kept_columns: int
    stray: tuple[str, ...] = ()  # references of the dropped cells (the first NAMED)
    stray_count: int = 0
    #: Error cells (row, column) -> text, for .xlsb (for .xlsx, importer.sheet.errorcells).
    errors: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def grid(self) -> int:
        return self.rows * self.columns


def grid_budget(cells: int) -> int:
    """Grid cells a sheet holding *cells* values may make calamine allocate."""
    return min(MAX_GRID_CELLS, max(GRID_FLOOR, GRID_PER_VALUE * cells))


# --- zip ---------------------------------------------------------------------------------------


def _check_declared(archive: zipfile.ZipFile) -> None:
    """Refuse on the sizes the zip declares, before anything is inflated."""
    total = 0
    for info in archive.infolist():
        if info.filename.startswith(_UNREAD) or info.filename.endswith("vbaProject.bin"):
            continue  # pictures, embedded files, macros: calamine never inflates them
        limit = MAX_SHEET_BYTES if _is_big_part(info.filename) else MAX_OTHER_BYTES
        if info.file_size > limit:
            raise WorkbookRefused(
                f"part '{info.filename}' of the workbook inflates to {_mb(info.file_size)}"
                f" (limit {_mb(limit)}): a damaged or hostile file"
            )
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise WorkbookRefused(
            f"the workbook inflates to {_mb(total)} (limit {_mb(MAX_TOTAL_BYTES)})"
        )


def _is_big_part(name: str) -> bool:
    return name.startswith("xl/worksheets/") or name in {
        "xl/sharedStrings.xml",
        "xl/sharedStrings.bin",
        "content.xml",
    }


def _chunks(archive: zipfile.ZipFile, name: str, limit: int) -> Iterator[bytes]:
    """*name*'s inflated bytes in chunks, counted: more than *limit* (whatever the zip declares)
    is refused. zipfile itself stops at the declared size and then fails the CRC check."""
    seen = 0
    with archive.open(name) as stream:
        while chunk := stream.read(_CHUNK):
            seen += len(chunk)
            if seen > limit:
                raise WorkbookRefused(
                    f"part '{name}' inflates past {_mb(limit)}: a damaged or hostile file"
                )
            yield chunk


def _blocks(archive: zipfile.ZipFile, name: str, limit: int, cut: bytes = b">") -> Iterator[bytes]:
    """*name*'s XML in blocks that end just after a *cut* (tags are never split)."""
    carry = b""
    for chunk in _chunks(archive, name, limit):
        data = carry + chunk
        end = data.rfind(cut)
        if end < 0:
            if len(data) > MAX_RUN_BYTES + _CHUNK:
                raise WorkbookRefused(
                    f"part '{name}' holds a run of more than {_mb(MAX_RUN_BYTES)} without markup"
                    " (a cell holds at most 32,767 characters)"
                )
            carry = data
            continue
        end += len(cut)
        carry = data[end:]
        if len(carry) > MAX_RUN_BYTES + _CHUNK:
            raise WorkbookRefused(f"part '{name}' holds an over-long run without markup")
        yield data[:end]
    if carry:
        yield carry


def _check_small_parts(archive: zipfile.ZipFile, names: tuple[str, ...], limit: int) -> None:
    """Inflate *names* (if present) counting, and refuse entity declarations in their head."""
    present = set(archive.namelist())
    for name in names:
        if name not in present:
            continue
        head = b""
        for chunk in _chunks(archive, name, limit):
            if len(head) < 4096:
                head += chunk[:4096]
        if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
            raise WorkbookRefused(f"part '{name}' declares XML entities: a hostile file")


def _column(letters: bytes | str) -> int:
    """``A`` -> 0, ``XFD`` -> 16383."""
    number = 0
    for letter in letters.encode() if isinstance(letters, str) else letters:
        number = number * 26 + letter - 64
    return number - 1


def _reference(row: int, column: int) -> str:
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


def _judge(
    name: str,
    part: str,
    declared: str | None,
    cells: int,
    rows: array[int],
    columns: array[int],
    beyond: list[str],
    *,
    exact_refs: bool,
) -> SheetCheck:
    """Decide from the marks of used rows and columns: read as it is, read without far cells
    (their exact number is known once they are removed), or refuse."""
    last_row = _last(rows)
    last_column = _last(columns)
    height, width = last_row + 1, last_column + 1
    budget = grid_budget(cells)
    if not beyond and height * width <= budget:
        return SheetCheck(name, part, declared, cells, height, width, height, width)
    if height * width <= budget:  # only values outside Excel's grid are in the way
        kept_rows, kept_columns = height, width
    else:
        kept_rows = _main_extent(rows, ROW_GAP)
        kept_columns = _main_extent(columns, COLUMN_GAP)
    # At least one far cell per far row, per far column, and each outside the grid.
    bound = max(sum(rows[kept_rows:]), sum(columns[kept_columns:])) + len(beyond)
    far = _reference(last_row, last_column) if height * width else (beyond or ["?"])[0]
    used = f"A1:{far}"
    if bound > MAX_STRAY_CELLS or kept_rows * kept_columns > budget:
        raise WorkbookRefused(
            f"sheet '{name}' spreads {cells:,} values over {used}"
            f" ({height * width:,} cells; this importer reads at most {budget:,} for it):"
            " delete the far-away cells, or copy the data to a new sheet"
        )
    if not exact_refs:
        raise WorkbookRefused(
            f"sheet '{name}' has values far from its data (up to {far}): delete them"
            " (Ctrl+End in Excel shows the last one) and save again"
        )
    return SheetCheck(
        name, part, declared, cells, height, width, kept_rows, kept_columns, (), bound
    )


def _last(counts: array[int]) -> int:
    """The index of the last non-zero counter, -1 if none (from the end, at C speed)."""
    data = counts.tobytes()
    stripped = len(data.rstrip(b"\x00"))
    return (stripped + counts.itemsize - 1) // counts.itemsize - 1


def _main_extent(counts: array[int], gap: int) -> int:
    """How many rows (or columns) from the first make the data area: up to the end of the
    block, among blocks separated by more than *gap* empty ones, holding the most values."""
    best_end = best_total = 0
    total = 0
    previous = -1
    for index, count in enumerate(counts):
        if not count:
            continue
        if previous >= 0 and index - previous > gap:
            total = 0
        total += count
        previous = index
        if total >= best_total:
            best_total, best_end = total, index + 1
    return best_end


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
