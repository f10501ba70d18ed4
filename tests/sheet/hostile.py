"""Workbooks the tests make for themselves: a few lines of zipfile, no spreadsheet program.

:func:`write_xlsx` writes the smallest workbook Excel and calamine accept (content types, the
package and workbook relationships, one worksheet, optionally shared strings); its sheet XML
comes from :func:`sheet_xml` or from any iterator of byte chunks, so that hostile sheets
inflating to gigabytes stay tiny on disk and cheap to write (repeated text deflates ~1000:1).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"

HEADER = ["Promo Code", "Expires", "Video ID"]
ROWS = [
    ["CODE-001", "2030-01-01", "5f1a2b3c4d5e6f7a8b9c0d11"],
    ["CODE-002", "2030-01-02", "5f1a2b3c4d5e6f7a8b9c0d12"],
    ["CODE-003", "2030-01-03", "5f1a2b3c4d5e6f7a8b9c0d13"],
]


def reference(row: int, column: int) -> str:
    """(0, 0) -> ``A1``."""
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


def cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'


def sheet_xml(
    rows: Sequence[Sequence[str]], dimension: str | None = None, extra: str = ""
) -> bytes:
    """A worksheet of inline-string cells from A1, then *extra* XML inside ``<sheetData>``."""
    body = "".join(
        f'<row r="{i + 1}">'
        + "".join(cell(reference(i, j), v) for j, v in enumerate(row) if v)
        + "</row>"
        for i, row in enumerate(rows)
    )
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}">{dim}'
        f"<sheetData>{body}{extra}</sheetData></worksheet>"
    ).encode()


def stray_row(ref: str, text: str = "x") -> str:
    """A row holding one cell at *ref* (e.g. ``XFD1048576``)."""
    row = "".join(ch for ch in ref if ch.isdigit())
    return f'<row r="{row}">{cell(ref, text)}</row>'


def write_xlsx(
    path: Path,
    sheet: bytes | Iterable[bytes],
    *,
    shared: Sequence[str] | None = None,
    name: str = "Codes",
    macro: bool = False,
    level: int = 1,
    zip64: bool = True,
) -> Path:
    """A one-sheet workbook at *path* whose sheet part is *sheet* (bytes, or chunks of it)."""
    main = (
        "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
        if macro
        else (f"{_SHEET_TYPE}.sheet.main+xml")
    )
    types = (
        f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{_TYPES}">'
        f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package'
        '.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{main}"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml"'
        f' ContentType="{_SHEET_TYPE}.worksheet+xml"/>'
        "</Types>"
    )
    package = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )
    book = (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN}" xmlns:r="{_DOC}">'
        f'<sheets><sheet name="{escape(name)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    relations = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
        + (
            f'<Relationship Id="rId2" Type="{_DOC}/sharedStrings" Target="sharedStrings.xml"/>'
            if shared is not None
            else ""
        )
        + "</Relationships>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", package)
        archive.writestr("xl/workbook.xml", book)
        archive.writestr("xl/_rels/workbook.xml.rels", relations)
        if shared is not None:
            strings = "".join(f"<si><t>{escape(s)}</t></si>" for s in shared)
            archive.writestr(
                "xl/sharedStrings.xml",
                f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}">{strings}</sst>',
            )
        if isinstance(sheet, bytes):
            archive.writestr("xl/worksheets/sheet1.xml", sheet)
        else:
            with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=zip64) as sink:
                for chunk in sheet:
                    sink.write(chunk)
    return path


def big_text_sheet(rows: int, width: int) -> Iterator[bytes]:
    """A sheet of *rows* rows, each one inline cell of *width* repeated characters, in chunks:
    ``big_text_sheet(1_000_000, 3000)`` inflates to 3 GB."""
    yield (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}"><sheetData>').encode()
    text = "a" * width
    batch = 1000
    for first in range(0, rows, batch):
        yield "".join(
            f'<row r="{n + 1}">{cell(f"A{n + 1}", text)}</row>'
            for n in range(first, min(first + batch, rows))
        ).encode()
    yield b"</sheetData></worksheet>"


def shared_amplifier_sheet(rows: int) -> Iterator[bytes]:
    """*rows* cells all pointing at shared string 0 (calamine copies it into every cell)."""
    yield (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}"><sheetData>').encode()
    batch = 10_000
    for first in range(0, rows, batch):
        yield "".join(
            f'<row r="{n + 1}"><c r="A{n + 1}" t="s"><v>0</v></c></row>'
            for n in range(first, min(first + batch, rows))
        ).encode()
    yield b"</sheetData></worksheet>"


def lie_about_size(path: Path, member: str, size: int) -> None:
    """Rewrite the declared uncompressed size of *member* in the central directory (and the
    local header) to *size*: a zip that lies about how much it inflates to."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    local = info.header_offset
    data[local + 22 : local + 26] = size.to_bytes(4, "little")
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        length = int.from_bytes(data[position + 28 : position + 30], "little")
        if bytes(data[position + 46 : position + 46 + length]) == name:
            data[position + 24 : position + 28] = size.to_bytes(4, "little")
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))


def legit_sheet(rows: int) -> Iterator[bytes]:
    """A marketing sheet of *rows* data rows under a header, as LibreOffice writes one: shared
    strings for codes and ids (indices 0..2*rows+2), numbers for dates and quantities."""
    yield (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}">').encode()
    yield f'<dimension ref="A1:F{rows + 1}"/><sheetData><row r="1">'.encode()
    yield "".join(f'<c r="{reference(0, j)}" t="s"><v>{j}</v></c>' for j in range(3)).encode()
    yield b"</row>"
    batch = 10_000
    for first in range(0, rows, batch):
        parts = []
        for n in range(first, min(first + batch, rows)):
            r = n + 2
            parts.append(
                f'<row r="{r}"><c r="A{r}" t="s"><v>{3 + 2 * n}</v></c>'
                f'<c r="B{r}" s="1"><v>{47000 + n % 1000}</v></c>'
                f'<c r="C{r}" t="s"><v>{4 + 2 * n}</v></c><c r="D{r}"><v>1</v></c>'
                f'<c r="E{r}" t="inlineStr"><is><t>Campaign</t></is></c><c r="F{r}" s="2"/></row>'
            )
        yield "".join(parts).encode()
    yield b"</sheetData></worksheet>"


def legit_strings(rows: int) -> list[str]:
    out = ["Promo Code", "Expires", "Video ID"]
    for n in range(rows):
        out += [f"CODE-{n:08d}", f"5f1a2b3c4d5e6f7a{n:08x}"]
    return out


# --- .xlsb, made by hand -----------------------------------------------------------------------


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def record(kind: int, payload: bytes = b"") -> bytes:
    """One BIFF12 record: its type and size as base-128 numbers, then the payload."""
    return _varint(kind) + _varint(len(payload)) + payload


def _wide(text: str) -> bytes:
    return len(text).to_bytes(4, "little") + text.encode("utf-16-le")


def xlsb_row(row: int) -> bytes:
    """BrtRowHdr: the row (from 0), then style, height, flags and no column spans."""
    return record(0, row.to_bytes(4, "little") + bytes(13))


def xlsb_number(column: int, value: float) -> bytes:
    """BrtCellReal: column, style and flags, an IEEE double."""
    import struct

    return record(5, column.to_bytes(4, "little") + bytes(4) + struct.pack("<d", value))


def xlsb_text(column: int, text: str) -> bytes:
    """BrtCellSt: column, style and flags, an XLWideString."""
    return record(6, column.to_bytes(4, "little") + bytes(4) + _wide(text))


def xlsb_error(column: int, code: int) -> bytes:
    """BrtCellError: column, style and flags, the error code (0x2A is #N/A)."""
    return record(3, column.to_bytes(4, "little") + bytes(4) + bytes([code]))


def write_xlsb(
    path: Path, cells: bytes, name: str = "Codes", dimension: tuple[int, int] = (0, 0)
) -> Path:
    """A one-sheet .xlsb whose sheet data are the records *cells* (rows and cells); its
    BrtWsDim (which calamine requires) declares A1 to (last row, last column) *dimension*."""
    bin_type = "application/vnd.ms-excel"
    types = (
        f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{_TYPES}">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package'
        '.relationships+xml"/>'
        f'<Default Extension="bin" ContentType="{bin_type}.sheet.binary.macroEnabled.main"/>'
        f'<Override PartName="/xl/worksheets/sheet1.bin" ContentType="{bin_type}.worksheet"/>'
        "</Types>"
    )
    package = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC}/officeDocument" Target="xl/workbook.bin"/>'
        "</Relationships>"
    )
    relations = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.bin"/>'
        "</Relationships>"
    )
    book = (
        record(131)  # BrtBeginBook
        + record(143)  # BrtBeginBundleShs
        + record(156, bytes(4) + (1).to_bytes(4, "little") + _wide("rId1") + _wide(name))
        + record(144)  # BrtEndBundleShs
        + record(132)  # BrtEndBook
    )
    last_row, last_column = dimension
    extent = b"".join(n.to_bytes(4, "little") for n in (0, last_row, 0, last_column))
    sheet = record(129) + record(148, extent) + record(145) + cells + record(146) + record(130)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", package)
        archive.writestr("xl/workbook.bin", book)
        archive.writestr("xl/_rels/workbook.bin.rels", relations)
        archive.writestr("xl/worksheets/sheet1.bin", sheet)
    return path


# --- OLE containers, made by hand ---------------------------------------------------------------


def write_ole(path: Path, stream: str) -> Path:
    """The smallest Compound File (MS-CFB, version 3) whose directory names one *stream*:
    ``Workbook`` looks like Excel 97, ``EncryptedPackage`` like a password-protected .xlsx.
    Only its directory is real: enough to be recognised, not to be read."""
    free, end, fat_sector = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    header = bytearray(512)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    header[0x18:0x1A] = (0x3E).to_bytes(2, "little")
    header[0x1A:0x1C] = (3).to_bytes(2, "little")
    header[0x1C:0x1E] = (0xFFFE).to_bytes(2, "little")
    header[0x1E:0x20] = (9).to_bytes(2, "little")
    header[0x20:0x22] = (6).to_bytes(2, "little")
    header[0x2C:0x30] = (1).to_bytes(4, "little")  # one FAT sector
    header[0x30:0x34] = (1).to_bytes(4, "little")  # the directory starts in sector 1
    header[0x38:0x3C] = (4096).to_bytes(4, "little")
    header[0x3C:0x40] = end.to_bytes(4, "little")
    header[0x44:0x48] = end.to_bytes(4, "little")
    header[0x4C:0x50] = (0).to_bytes(4, "little")  # the FAT is sector 0
    header[0x50:512] = b"\xff" * (512 - 0x50)
    fat = fat_sector.to_bytes(4, "little") + end.to_bytes(4, "little")
    fat += free.to_bytes(4, "little") * 126

    def entry(name: str, kind: int) -> bytes:
        raw = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        raw[0 : len(encoded)] = encoded
        raw[0x40:0x42] = len(encoded).to_bytes(2, "little")
        raw[0x42] = kind
        raw[0x44:0x50] = free.to_bytes(4, "little") * 3
        raw[0x74:0x78] = end.to_bytes(4, "little")
        return bytes(raw)

    directory = entry("Root Entry", 5) + entry(stream, 2) + bytes(256)
    path.write_bytes(bytes(header) + fat + directory)
    return path


# --- .ods ----------------------------------------------------------------------------------------

_ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)


def write_ods(path: Path, rows: str) -> Path:
    """A one-sheet .ods whose table holds *rows* (``<table:table-row>`` XML)."""
    body = (
        f"<office:document-content {_ODS_NS}><office:body><office:spreadsheet>"
        f'<table:table table:name="Codes">{rows}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", body)
        archive.writestr("META-INF/manifest.xml", manifest)
    return path


def ods_repeated_bomb() -> str:
    """One cell repeated over the whole grid: 17 billion cells in a few hundred bytes."""
    return (
        '<table:table-row table:number-rows-repeated="1048576"><table:table-cell'
        ' table:number-columns-repeated="16384" office:value-type="string"><text:p>x</text:p>'
        "</table:table-cell></table:table-row>"
    )
