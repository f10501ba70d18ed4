"""Checks a workbook before python-calamine reads it, so that no file can crash the process.

python-calamine 0.9.1 builds a dense grid (32 bytes a cell, in Rust) spanning every cell that
holds a value, from the first to the last: one stray value at ``XFD1048576`` asks for 512 GiB and
Rust aborts the process (SIGABRT, no Python exception). It builds the grid inside
``get_sheet_by_name``, before ``to_python(nrows=...)`` or ``iter_rows`` are reached, and from the
cells it found, not from the sheet's declared ``<dimension>``: no calamine option helps. So, for
each worksheet of an .xlsx/.xlsm (and .xlsb), this module streams the sheet part from the zip
(never inflating it whole, counting what it inflates) and finds where its values really are:

- a sheet whose dense grid stays within :func:`grid_budget` is read as it is;
- a sheet whose data sit in a small area but that has a few far-away values (up to
  :data:`MAX_STRAY_CELLS`) is rewritten, streamed, into a cleaned temporary copy of the workbook
  without those cells, and read from there, with a warning naming them;
- anything else (too many cells, too sparse, too much text, a zip bomb, an entity declaration,
  a cell reference calamine would misplace) is refused with one line, :class:`WorkbookRefused`.

Memory while checking: one chunk (4 MiB) plus a 4-byte counter per row (4 MiB) and per column.
Memory of the read that follows: about 40 bytes per grid cell (calamine's cell, the Python list
slot) plus each value's own Python object and text: at most :data:`MAX_GRID_CELLS` grid cells and
:data:`MAX_TEXT_BYTES` of cell text, whatever the file says about itself.

.xls (BIFF8) cannot exceed 65,536 x 256 cells and is not compressed, so its size on disk bounds
it (:data:`MAX_XLS_BYTES`). .ods is left to calamine's own limits (it refuses more than
100,000,000 cells and entity declarations), after the zip checks.

A workbook whose name does not say what it is (an .xls saved as .xlsx) is handed to calamine,
which picks its reader by the name, as a link named for its kind.

Standard library only.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import shutil
import tempfile
import zipfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from xml.parsers import expat

from importer.sheet import xls
from importer.sheet.xlsb import _check_xlsb_sheet, _xlsb_sheets
from importer.sheet.zipparts import (
    MAX_COLUMNS,
    MAX_OTHER_BYTES,
    MAX_ROWS,
    MAX_SHEET_BYTES,
    MAX_STRAY_CELLS,
    MAX_TEXT_BYTES,
    MAX_XLS_BYTES,
    NAMED,
    SheetCheck,
    WorkbookRefused,
    _blocks,
    _check_declared,
    _check_small_parts,
    _chunks,
    _column,
    _first_line,
    _judge,
    _mb,
    _reference,
    grid_budget,
)

_FAST_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')
_ANY_CELL = re.compile(rb"<c[\s/>]")
_PREFIXED_CELL = re.compile(rb"<[A-Za-z_][\w.-]*:c[\s/>]")
_WHOLE_CELL = re.compile(rb'<c\s+r="([A-Z]{1,3})([0-9]{1,7})"[^>]*?(?:/>|>.*?</c>)', re.DOTALL)
_SHARED_REF = re.compile(rb'<c\s[^>]*?t="s"[^>]*>\s*(?:<f[^>]*?(?:/>|>[^<]*</f>)\s*)?<v>(\d+)</v>')
_DIMENSION = re.compile(rb'<(?:[\w.-]+:)?dimension\s+ref="([^"]*)"')
_SHEET_TAG = re.compile(r"<(?:[\w.-]+:)?sheet\s[^>]*>")
_RELATIONSHIP_TAG = re.compile(r"<(?:[\w.-]+:)?Relationship\s[^>]*>")
_ATTRIBUTE = re.compile(r'([\w:]+)="([^"]*)"')
_REFERENCE = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")


__all__ = [
    "MAX_STRAY_CELLS",
    "Plan",
    "SheetCheck",
    "WorkbookRefused",
    "grid_budget",
    "guarded",
    "plan",
]


@dataclass
class Plan:
    """What to hand calamine: *path* (the file itself, or a cleaned copy), and the warnings."""

    path: Path
    kind: str
    sheets: dict[str, SheetCheck] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    _tmp: str | None = None

    def cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


@contextlib.contextmanager
def guarded(path: Path, kind: str) -> Iterator[Plan]:
    """:func:`plan` as a context manager that removes the cleaned copy, if any, afterwards."""
    made = plan(path, kind)
    try:
        yield made
    finally:
        made.cleanup()


def plan(path: Path, kind: str) -> Plan:
    """Check the workbook at *path*, of *kind* (``xlsx``, ``xlsm``, ``xlsb``, ``xls``, ``ods``,
    as :func:`sniff.sniff` tells), before calamine opens it; raise :class:`WorkbookRefused`.

    calamine picks its reader by the file's name, so a workbook named otherwise (an old .xls
    saved as .xlsx) is handed over as a link named for what it is."""
    made = _plan(path, kind)
    if made.path != path or path.suffix.lower() == f".{kind}":
        return made
    tmp = tempfile.mkdtemp(prefix="guard-")
    link = Path(tmp) / f"workbook.{kind}"
    try:
        link.symlink_to(path.resolve())
    except OSError:
        shutil.copyfile(path, link)  # a file system without links
    return replace(made, path=link, _tmp=tmp)


def _plan(path: Path, kind: str) -> Plan:
    if kind == "xls":
        size = path.stat().st_size
        if size > MAX_XLS_BYTES:
            raise WorkbookRefused(
                f"this Excel 97 workbook is {_mb(size)}, more than the {_mb(MAX_XLS_BYTES)}"
                " this importer reads; save it as .xlsx or .csv"
            )
        return _plan_xls(path)
    try:
        with zipfile.ZipFile(path) as archive:
            _check_declared(archive)
            if kind == "ods":
                _check_small_parts(archive, ("content.xml", "styles.xml"), limit=MAX_SHEET_BYTES)
                return Plan(path, kind)
            return _plan_ooxml(path, archive, kind)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise WorkbookRefused(f"the workbook's zip is damaged ({_first_line(exc)})") from None
    except OSError as exc:
        raise WorkbookRefused(f"cannot read the workbook ({exc.strerror or exc})") from None


def _plan_xls(path: Path) -> Plan:
    checks, blanked = xls.check(path)
    if blanked is None:
        return Plan(path, "xls", checks)
    tmp = tempfile.mkdtemp(prefix="guard-")
    try:
        cleaned = Path(tmp) / "cleaned.xls"
        xls.write_copy(path, blanked, cleaned)
        again, still = xls.check(cleaned)  # the copy must pass on its own, strays gone
        if still is not None or not again:
            raise WorkbookRefused(
                "the workbook has values far from its data that cannot be removed safely:"
                " delete them and save again"
            )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    warnings = tuple(_stray_warning(c) for c in checks.values() if c.stray_count)
    return Plan(cleaned, "xls", checks, warnings, tmp)


# --- OOXML (xlsx, xlsm, xlsb) ------------------------------------------------------------------


def _plan_ooxml(path: Path, archive: zipfile.ZipFile, kind: str) -> Plan:
    binary = kind == "xlsb"
    book = "xl/workbook.bin" if binary else "xl/workbook.xml"
    _check_small_parts(
        archive,
        ("[Content_Types].xml", f"{book.replace('xl/', 'xl/_rels/')}.rels", "xl/styles.xml", book),
        limit=MAX_OTHER_BYTES,
    )
    sheets = _sheet_parts(archive, binary)
    lengths = None if binary else _shared_lengths(archive)
    checks: dict[str, SheetCheck] = {}
    for name, part in sheets.items():
        if binary:
            checks[name] = _check_xlsb_sheet(archive, name, part)
        else:
            checks[name] = _check_xml_sheet(archive, name, part, lengths)
    dirty = {c.part: c for c in checks.values() if c.stray_count}
    if not dirty:
        return Plan(path, kind, checks)
    tmp = tempfile.mkdtemp(prefix="guard-")
    try:
        cleaned = Path(tmp) / f"cleaned.{kind}"
        dropped = _write_cleaned(archive, cleaned, dirty)
        with zipfile.ZipFile(cleaned) as again:  # the copy must pass on its own, strays gone
            for name, check in list(checks.items()):
                if check.part in dirty:
                    recheck = _check_xml_sheet(again, name, check.part, lengths)
                    if recheck.stray_count:
                        raise WorkbookRefused(
                            f"sheet '{name}' has values far from its data that cannot be"
                            " removed safely: delete them and save again"
                        )
                    gone = dropped[check.part]
                    checks[name] = replace(check, stray=tuple(gone[:NAMED]), stray_count=len(gone))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    warnings = tuple(_stray_warning(c) for c in checks.values() if c.stray_count)
    return Plan(cleaned, kind, checks, warnings, tmp)


def _sheet_parts(archive: zipfile.ZipFile, binary: bool) -> dict[str, str]:
    """Sheet name -> zip member, for the sheets the workbook lists (text patterns, no parser).

    For .xlsb the workbook part is binary: its sheet parts are taken from the relationships,
    named by their part (the names are only used in messages)."""
    present = set(archive.namelist())
    rels = _text(archive, "xl/_rels/workbook.bin.rels" if binary else "xl/_rels/workbook.xml.rels")
    targets: dict[str, str] = {}
    for tag in _RELATIONSHIP_TAG.findall(rels):
        attributes = dict(_ATTRIBUTE.findall(tag))
        target = _unescape(attributes.get("Target", ""))
        if "worksheet" not in attributes.get("Type", "") or not target:
            continue
        if target.startswith("/"):
            member = target.lstrip("/")
        else:
            member = posixpath.normpath(posixpath.join("xl", target))
        targets[attributes.get("Id", "")] = member
    parts: dict[str, str] = {}
    if binary:
        for ident, name in _xlsb_sheets(archive):
            found = targets.get(ident)
            if found is not None and found in present:
                parts[name] = found
        return parts
    book = _text(archive, "xl/workbook.xml")
    for tag in _SHEET_TAG.findall(book):
        attributes = dict(_ATTRIBUTE.findall(tag))
        listed = targets.get(attributes.get("r:id", ""))
        if listed is not None and listed in present:
            parts[_unescape(attributes.get("name", listed))] = listed
    # Worksheets nobody lists are not read by calamine; listed ones missing are its error.
    return parts


def _text(archive: zipfile.ZipFile, name: str) -> str:
    try:
        return b"".join(_chunks(archive, name, MAX_OTHER_BYTES)).decode("utf-8", "replace")
    except KeyError:
        return ""


def _shared_lengths(archive: zipfile.ZipFile) -> array[int]:
    """The length in bytes of each shared string's XML (an upper bound of its text)."""
    lengths: array[int] = array("I")
    if "xl/sharedStrings.xml" not in archive.namelist():
        return lengths
    for block in _blocks(archive, "xl/sharedStrings.xml", MAX_SHEET_BYTES, cut=b"</si>"):
        if b"<!ENTITY" in block:
            raise WorkbookRefused("the shared strings declare XML entities: a hostile file")
        pieces = block.split(b"</si>")
        lengths.extend(map(min, map(len, pieces[:-1]), repeat(0xFFFFFFFF)))
    return lengths


def _check_xml_sheet(
    archive: zipfile.ZipFile, name: str, part: str, lengths: array[int] | None
) -> SheetCheck:
    rows: array[int] = array("B", bytes(MAX_ROWS))
    columns: array[int] = array("B", bytes(MAX_COLUMNS))
    beyond: list[str] = []  # values outside Excel's grid
    declared: str | None = None
    shared = cells = 0
    fast = True
    for block in _blocks(archive, part, MAX_SHEET_BYTES):
        if declared is None and (found := _DIMENSION.search(block)):
            declared = found.group(1).decode("ascii", "replace")
        if b"<!ENTITY" in block:
            raise WorkbookRefused(f"sheet '{name}' declares XML entities: a hostile file")
        shared += block.count(b't="s"')
        if not fast:
            continue
        matches = _FAST_CELL.findall(block)
        if len(matches) != block.count(b"<c") and len(matches) != len(_ANY_CELL.findall(block)):
            fast = False  # a cell calamine places by counting (no r=): parse exactly
            continue
        if block.find(b":c") >= 0 and _PREFIXED_CELL.search(block):
            fast = False  # a prefixed cell tag (calamine goes by local names): parse exactly
            continue
        # Value-less cells (<c r="A9" s="1"/>) are counted too: a conservative estimate.
        _count(matches, rows, columns, beyond)
        cells += len(matches)
    if not fast:
        rows = array("B", bytes(MAX_ROWS))
        columns = array("B", bytes(MAX_COLUMNS))
        beyond = []
        cells = _exact_positions(archive, name, part, rows, columns, beyond)
    text = _text_bound(archive, part, shared, lengths)
    if text > MAX_TEXT_BYTES:
        raise WorkbookRefused(
            f"sheet '{name}' holds {_mb(text)} of cell text (limit {_mb(MAX_TEXT_BYTES)}):"
            " save only the columns needed, or as .csv"
        )
    return _judge(name, part, declared, cells, rows, columns, beyond, exact_refs=fast)


def _count(
    cells: list[tuple[bytes, bytes]], rows: array[int], columns: array[int], beyond: list[str]
) -> None:
    """Mark the rows and columns that the (letters, digits) references of *cells* use;
    references outside Excel's grid go to *beyond* (the first few). Sets, not counters: a
    million-row sheet is marked in about a second."""
    used_rows = set(map(itemgetter(1), cells))
    used_columns = set(map(itemgetter(0), cells))
    bad_rows = {d for d in used_rows if not 0 < int(d) <= MAX_ROWS}
    bad_columns = {c for c in used_columns if _column(c) >= MAX_COLUMNS}
    for digits in used_rows - bad_rows:
        rows[int(digits) - 1] = 1
    for letters in used_columns - bad_columns:
        columns[_column(letters)] = 1
    if bad_rows or bad_columns:
        for letters, digits in cells:
            if (digits in bad_rows or letters in bad_columns) and len(beyond) <= MAX_STRAY_CELLS:
                beyond.append((letters + digits).decode())


def _exact_positions(
    archive: zipfile.ZipFile,
    name: str,
    part: str,
    rows: array[int],
    columns: array[int],
    beyond: list[str],
) -> int:
    """Place every value cell as calamine does (xlsx/cells_reader.rs): a row's ``r`` sets the
    row, the end of a row moves to the next one and back to column A; a cell's ``r`` sets its
    place and the column, a cell without one takes the current place; each cell moves one column
    on. Element names are matched by their local name, whatever their prefix."""
    state = {"row": 0, "column": 0, "depth": 0, "valued": 0, "cell_row": 0, "cell_column": 0}
    state["cells"] = 0

    def local(tag: str) -> str:
        return tag.rpartition(":")[2]

    def start(tag: str, attributes: dict[str, str]) -> None:
        tag = local(tag)
        if state["depth"]:
            state["depth"] += 1
            state["valued"] = 1  # any child: a value, a formula, an inline string
            return
        if tag == "row":
            if "r" in attributes:
                state["row"] = _number(attributes["r"], name) - 1
        elif tag == "c":
            reference = attributes.get("r")
            if reference is not None:
                found = _REFERENCE.fullmatch(reference)
                if found is None:
                    raise WorkbookRefused(
                        f"sheet '{name}' has a cell reference '{reference[:20]}' that is not one"
                    )
                state["cell_row"] = int(found.group(2)) - 1
                state["cell_column"] = state["column"] = _column(found.group(1))
            else:
                state["cell_row"], state["cell_column"] = state["row"], state["column"]
            state["depth"], state["valued"] = 1, 0

    def end(tag: str) -> None:
        tag = local(tag)
        if state["depth"] > 1:
            state["depth"] -= 1
            return
        if state["depth"] == 1 and tag == "c":
            state["depth"] = 0
            state["column"] += 1
            if state["valued"]:
                state["cells"] += 1
                row, column = state["cell_row"], state["cell_column"]
                if 0 <= row < MAX_ROWS and column < MAX_COLUMNS:
                    rows[row] = columns[column] = 1
                elif len(beyond) <= MAX_STRAY_CELLS:
                    beyond.append(_reference(row, column))
        elif tag == "row":
            state["row"] += 1
            state["column"] = 0

    def refuse(*_: object) -> None:
        raise WorkbookRefused(f"sheet '{name}' declares XML entities: a hostile file")

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        for chunk in _chunks(archive, part, MAX_SHEET_BYTES):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise WorkbookRefused(f"sheet '{name}' is not well-formed XML ({exc})") from None
    return state["cells"]


def _number(text: str, name: str) -> int:
    if not text.isdigit() or len(text) > 7:
        raise WorkbookRefused(f"sheet '{name}' has a row number '{text[:20]}' that is not one")
    return int(text)


def _text_bound(
    archive: zipfile.ZipFile, part: str, shared: int, lengths: array[int] | None
) -> int:
    """An upper bound of the text calamine copies into the sheet's shared-string cells.

    The cheap bound (cells marked t="s" times the longest shared string) is usually enough;
    when it is not, the sheet is scanned again and each reference's string length summed."""
    if not lengths or not shared:
        return 0
    if shared * max(lengths) <= MAX_TEXT_BYTES:
        return shared * max(lengths)
    total = 0
    size = len(lengths)
    for block in _blocks(archive, part, MAX_SHEET_BYTES, cut=b"</c>"):
        for index in map(int, _SHARED_REF.findall(block)):
            total += lengths[index] if index < size else 0
    return total


def _stray_warning(check: SheetCheck) -> str:
    named = ", ".join(check.stray)
    more = check.stray_count - len(check.stray)
    if more > 0:
        named += f" and {more} more"
    area = f"A1:{_reference(check.kept_rows - 1, check.kept_columns - 1)}"
    return (
        f"sheet '{check.name}': ignoring {check.stray_count} cell(s) far from the data"
        f" ({named}); reading {area}"
    )


def _write_cleaned(
    archive: zipfile.ZipFile, target: Path, dirty: dict[str, SheetCheck]
) -> dict[str, list[str]]:
    """A copy of the workbook whose sheets in *dirty* lose the cells outside their kept area;
    the references dropped, per part."""
    dropped: dict[str, list[str]] = {}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in archive.infolist():
            check = dirty.get(info.filename)
            with out.open(info.filename, "w", force_zip64=True) as sink:
                if check is None:
                    for chunk in _chunks(archive, info.filename, MAX_SHEET_BYTES):
                        sink.write(chunk)
                else:
                    dropped[info.filename] = _rewrite(archive, check, sink.write)
    return dropped


def _rewrite(
    archive: zipfile.ZipFile, check: SheetCheck, write: Callable[[bytes], object]
) -> list[str]:
    """Stream *check*'s sheet into *write* without its cells outside the kept area; their refs."""
    dropped: list[str] = []

    def keep(found: re.Match[bytes]) -> bytes:
        letters, digits = found.group(1), found.group(2)
        row, column = int(digits) - 1, _column(letters)
        if 0 <= row < check.kept_rows and column < check.kept_columns:
            return found.group(0)
        if not found.group(0).endswith(b"/>"):  # a value-less cell goes unreported
            dropped.append((letters + digits).decode())
        return b""

    for block in _blocks(archive, check.part, MAX_SHEET_BYTES, cut=b"</c>"):
        write(_WHOLE_CELL.sub(keep, block))
    return dropped


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)
