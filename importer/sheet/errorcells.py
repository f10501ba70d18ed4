"""Formula cells of an .xlsx sheet that hold an error (``#N/A``, ``#DIV/0!``...), as shown.

python-calamine reads such a cell as an empty one, and an empty code cell means "generate a
code": a failed lookup would silently become a random code. The sheet's XML keeps the error
(``<c r="A7" t="e"><f>...</f><v>#N/A</v></c>``), so :func:`error_cells` finds it there, and the
loader shows it as the person sees it, to be refused like any other text that is no code,
date, id or quantity.

The scan decompresses the whole sheet (0.8 s for a million rows, measured here), so
:mod:`importer.sheet.workbooks` runs it in a thread while calamine parses the same sheet: both
release the GIL for their heavy part (zlib, Rust). Only cells marked ``t="e"`` are looked at
closely. OpenDocument files are not scanned: there an error is an empty string value.
"""

from __future__ import annotations

import html
import posixpath
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

_CHUNK = 1 << 22
#: How far back from an error mark the start of its cell may be, and what is carried over.
_OVERLAP = 4096
_SHEET_TAG = re.compile(r"<(?:\w+:)?sheet\s[^>]*>")
_RELATIONSHIP_TAG = re.compile(r"<(?:\w+:)?Relationship\s[^>]*>")
_ATTRIBUTE = re.compile(r'([\w:]+)="([^"]*)"')
_REFERENCE = re.compile(rb'\br="([A-Z]{1,3})([0-9]{1,7})"')
_VALUE = re.compile(rb"<v>([^<]{1,40})</v>")


def error_cells(path: Path, sheet: str) -> dict[tuple[int, int], str]:
    """(row, column) from 0 -> the error text, for the cells of *sheet* holding one; empty when
    there are none or the workbook's parts cannot be found (calamine has read it already)."""
    try:
        with zipfile.ZipFile(path) as archive:
            part = _sheet_part(archive, sheet)
            if part is None:
                return {}
            with archive.open(part) as stream:
                return _scan(stream.read, _CHUNK)
    except (OSError, KeyError, zipfile.BadZipFile):
        return {}


def _scan(read: Callable[[int], bytes], size: int) -> dict[tuple[int, int], str]:
    """The error cells in the XML that *read* yields, *size* bytes at a time."""
    found: dict[tuple[int, int], str] = {}
    carry = b""
    while chunk := read(size):
        data = carry + chunk
        start = 0
        while (mark := data.find(b't="e"', start)) >= 0:
            start = mark + 1
            opening = data.rfind(b"<c ", max(0, mark - _OVERLAP), mark)
            closing = data.find(b"</c>", mark)
            if opening < 0 or closing < 0:
                continue  # cut by the chunk's end: seen again with the next one
            reference = _REFERENCE.search(data, opening, mark)
            value = _VALUE.search(data, mark, closing)
            if reference and value:
                found[_position(*reference.groups())] = value.group(1).decode("utf-8", "replace")
        carry = data[-_OVERLAP:]
    return found


def _position(letters: bytes, digits: bytes) -> tuple[int, int]:
    column = 0
    for letter in letters:
        column = column * 26 + letter - ord("A") + 1
    return int(digits) - 1, column - 1


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member holding the XML of the sheet named *sheet*.

    Read with patterns rather than an XML parser: the two small parts have a fixed shape, and
    no entity in a file from outside is ever expanded.
    """
    book = archive.read("xl/workbook.xml").decode("utf-8", "replace")
    ident = None
    for tag in _SHEET_TAG.findall(book):
        attributes = dict(_ATTRIBUTE.findall(tag))
        if html.unescape(attributes.get("name", "")) == sheet:
            ident = attributes.get("r:id")
    rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    for tag in _RELATIONSHIP_TAG.findall(rels):
        attributes = dict(_ATTRIBUTE.findall(tag))
        target = html.unescape(attributes.get("Target", ""))
        if ident is not None and attributes.get("Id") == ident and target:
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join("xl", target))
    return None
