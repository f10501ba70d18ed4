"""What a file really is, from its content, and what to do when its name says otherwise.

:func:`sniff` looks at the first bytes (and, for a zip or an OLE container, at the names of its
parts: the zip's central directory, the OLE directory), never at the whole file. :func:`decide`
turns the kind and the file's name into a :class:`Decision` (how to read it, and a warning when
name and content disagree), or raises :class:`NotASpreadsheet` with one line saying what the
file really is and what to do.

A workbook under the wrong name is read as what it is (an .xls named .xlsx, an .xlsx named
.csv), with a warning. A web page saved as .xls is refused, not read: its table holds the cells
as they were displayed (dates and numbers as formatted text, merged header cells), pandas would
need lxml or BeautifulSoup to read it, and Excel itself warns before opening it; the person who
exported it can save it properly in a minute.

Standard library only.
"""

from __future__ import annotations

import codecs
import enum
import zipfile
from dataclasses import dataclass
from pathlib import Path

from importer.errors import InputError


class Kind(enum.Enum):
    """What a file is. The value is how messages name it."""

    CSV = "CSV text file"
    XLSX = "Excel workbook (.xlsx)"
    XLSM = "macro-enabled Excel workbook (.xlsm)"
    XLSB = "binary Excel workbook (.xlsb)"
    XLS = "Excel 97-2003 workbook (.xls)"
    ODS = "OpenDocument spreadsheet (.ods)"
    ENCRYPTED = "password-protected workbook"
    HTML = "web page (HTML)"
    XML_2003 = "Excel 2003 XML spreadsheet"
    FLAT_ODS = "flat OpenDocument spreadsheet (.fods)"
    PDF = "PDF document"
    IMAGE = "image"
    WORD = "Word document"
    POWERPOINT = "PowerPoint presentation"
    OTHER_ODF = "OpenDocument file that is not a spreadsheet"
    ZIP = "zip archive"
    DAMAGED_ZIP = "damaged zip archive"
    OLE = "Office document that is not a workbook"
    BINARY = "binary file"
    EMPTY = "empty file"


#: Kinds read by calamine, and by which reader.
WORKBOOKS = frozenset({Kind.XLSX, Kind.XLSM, Kind.XLSB, Kind.XLS, Kind.ODS})
#: The kind each file name ending stands for.
SUFFIXES: dict[str, Kind] = {
    ".csv": Kind.CSV,
    ".tsv": Kind.CSV,
    ".txt": Kind.CSV,
    ".xlsx": Kind.XLSX,
    ".xlsm": Kind.XLSM,
    ".xlsb": Kind.XLSB,
    ".xls": Kind.XLS,
    ".ods": Kind.ODS,
}
#: What guard.plan calls each workbook kind.
GUARD_KIND = {
    Kind.XLSX: "xlsx",
    Kind.XLSM: "xlsm",
    Kind.XLSB: "xlsb",
    Kind.XLS: "xls",
    Kind.ODS: "ods",
}

_SHORT = {
    Kind.CSV: "CSV",
    Kind.XLSX: ".xlsx",
    Kind.XLSM: ".xlsm",
    Kind.XLSB: ".xlsb",
    Kind.XLS: ".xls",
    Kind.ODS: ".ods",
}
#: Control bytes no text file holds (tab, line feed, form feed, carriage return, escape excepted).
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))
_OLE = bytes.fromhex("D0CF11E0A1B11AE1")
_HEAD = 4096
_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<table", b"<head", b"<body", b"<meta", b"<style")

_SAVE_AS = "open it in Excel (or LibreOffice) and save it as .xlsx, or export the sheet as .csv"


class NotASpreadsheet(InputError):
    """A file that cannot be read as a spreadsheet; ``str()`` is one line, without the path."""


@dataclass(frozen=True)
class Decision:
    """How to read a file: ``csv`` or ``workbook``; its kind; a warning about its name."""

    reader: str
    kind: Kind
    warning: str | None = None


def sniff(path: Path) -> Kind:
    """The kind of the file at *path*, from its content. OSError (missing file...) propagates."""
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    if not head.strip():
        return Kind.EMPTY
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(path)
    if head.startswith(_OLE):
        return _ole_kind(path)
    if head.startswith(b"%PDF"):
        return Kind.PDF
    if any(head.startswith(signature) for signature, _ in _IMAGES):
        return Kind.IMAGE
    text = _text_head(head)
    if text is None:
        return Kind.BINARY
    start = text.lstrip().lower()
    if start.startswith(b"<?xml"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in start or b"excel.sheet" in start:
            return Kind.XML_2003
        if b"opendocument" in start and b"<office:document" in start:
            return Kind.FLAT_ODS
        if b"<html" in start:
            return Kind.HTML
    if start.startswith(_HTML_STARTS) or (start.startswith(b"<!--") and b"<html" in start):
        return Kind.HTML
    return Kind.CSV


def image_name(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(16)
    return next((name for signature, name in _IMAGES if head.startswith(signature)), "an")


def decide(path: Path, kind: Kind | None = None) -> Decision:
    """How to read *path* given its content (*kind*, sniffed if not given) and its name."""
    kind = sniff(path) if kind is None else kind
    suffix = path.suffix.lower()
    named = SUFFIXES.get(suffix)
    shown = f"'{suffix}'" if suffix else "no extension"
    if kind in WORKBOOKS or kind is Kind.CSV:
        reader = "csv" if kind is Kind.CSV else "workbook"
        if named is kind:
            return Decision(reader, kind)
        if kind is Kind.CSV and named is None:
            # Text under an unknown name is as likely JSON or a log as CSV: the name decides.
            raise NotASpreadsheet(
                f"unsupported {f'file type {shown}' if suffix else 'file without an extension'}"
                " (use .csv, .xlsx, .xlsm, .xlsb, .xls or .ods)"
            )
        if (kind is Kind.XLSM and named is Kind.XLSX) or (kind is Kind.XLSX and named is Kind.XLSM):
            return Decision(reader, kind)  # the same format; macros are never run anyway
        return Decision(
            reader,
            kind,
            f"this file is {_a(kind.value)} but is named with {shown};"
            f" reading it as {_SHORT[kind]}",
        )
    raise NotASpreadsheet(message(kind, suffix, path))


def message(kind: Kind, suffix: str, path: Path | None = None) -> str:
    """The one line for a file of *kind* named with *suffix* that is not read."""
    saved = f" saved as {suffix}" if suffix else ""
    if kind is Kind.EMPTY:
        return "the file is empty"
    if kind is Kind.ENCRYPTED:
        return (
            "this workbook is password-protected: open it in Excel, remove the password"
            " (File > Info > Protect Workbook > Encrypt with Password) and save it again"
        )
    if kind is Kind.HTML:
        return f"this is a web page (HTML){saved}, not a workbook: {_SAVE_AS}"
    if kind in (Kind.XML_2003, Kind.FLAT_ODS):
        return f"this is {_a(kind.value)}{saved}: {_SAVE_AS}"
    if kind is Kind.DAMAGED_ZIP:
        return "this zip file is damaged (cut short while downloading or copying?): get it again"
    if kind is Kind.IMAGE:
        picture = image_name(path) if path is not None else "an"
        return f"this is {_a(picture)} image{saved}, not a spreadsheet"
    if kind in (Kind.PDF, Kind.WORD, Kind.POWERPOINT, Kind.ZIP, Kind.OTHER_ODF, Kind.OLE):
        return f"this is {_a(kind.value)}{saved}, not a spreadsheet: export the sheet as .xlsx"
    return f"not a spreadsheet ({kind.value}{saved}): use .csv, .xlsx, .xls, .xlsb or .ods"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'AEIOUaeiou' else 'a'} {noun}"


# --- containers --------------------------------------------------------------------------------


def _zip_kind(path: Path) -> Kind:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "xl/workbook.bin" in names:
                return Kind.XLSB
            if "xl/workbook.xml" in names:
                types = _member_head(archive, "[Content_Types].xml", names, 1 << 16)
                return Kind.XLSM if b"macroEnabled.main" in types else Kind.XLSX
            if "mimetype" in names:
                mime = _member_head(archive, "mimetype", names, 256).strip()
                return Kind.ODS if mime == _ODS_MIME else Kind.OTHER_ODF
            if "word/document.xml" in names:
                return Kind.WORD
            if "ppt/presentation.xml" in names:
                return Kind.POWERPOINT
            return Kind.ZIP
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError):
        return Kind.DAMAGED_ZIP


def _member_head(archive: zipfile.ZipFile, name: str, names: set[str], size: int) -> bytes:
    if name not in names:
        return b""
    with archive.open(name) as stream:
        return stream.read(size)


def _ole_kind(path: Path) -> Kind:
    """Excel 97 (a ``Workbook`` or ``Book`` stream), an encrypted OOXML package
    (``EncryptedPackage``), or another OLE document (Word's ``WordDocument``...)."""
    names = set(_ole_names(path))
    if "EncryptedPackage" in names or "EncryptionInfo" in names:
        return Kind.ENCRYPTED
    if "Workbook" in names or "Book" in names or "WORKBOOK" in names or "BOOK" in names:
        return Kind.XLS
    if "WordDocument" in names:
        return Kind.WORD
    if "PowerPoint Document" in names:
        return Kind.POWERPOINT
    return Kind.OLE


#: Directory sectors read at most (4,096 entries: far more than any Office file has).
_MAX_DIRECTORY_SECTORS = 256


def _ole_names(path: Path) -> list[str]:
    """The stream and storage names in an OLE (Compound File Binary) file's directory.

    MS-CFB: a 512-byte header (sector size as a power of two at 0x1E, the first directory
    sector at 0x30, the first 109 FAT sector numbers at 0x4C); the directory is a chain of
    sectors in the FAT, each holding 128-byte entries named in UTF-16 (length at 0x40)."""
    names: list[str] = []
    with path.open("rb") as handle:
        header = handle.read(512)
        if len(header) < 512:
            return names
        shift = int.from_bytes(header[0x1E:0x20], "little")
        if shift not in (9, 12):
            return names
        size = 1 << shift
        first_directory = int.from_bytes(header[0x30:0x34], "little")
        fat_sectors = [
            int.from_bytes(header[0x4C + 4 * i : 0x50 + 4 * i], "little") for i in range(109)
        ]
        fat: list[int] = []
        for sector in fat_sectors:
            if sector >= 0xFFFFFFFA:
                break
            handle.seek((sector + 1) * size)
            data = handle.read(size)
            fat.extend(int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4))
        sector = first_directory
        seen = 0
        while sector < 0xFFFFFFFA and seen < _MAX_DIRECTORY_SECTORS:
            handle.seek((sector + 1) * size)
            data = handle.read(size)
            for offset in range(0, len(data) - 127, 128):
                length = int.from_bytes(data[offset + 0x40 : offset + 0x42], "little")
                if 2 <= length <= 64:
                    raw = data[offset : offset + length - 2]
                    names.append(raw.decode("utf-16-le", "replace"))
            seen += 1
            sector = fat[sector] if sector < len(fat) else 0xFFFFFFFE
    return names


def _text_head(head: bytes) -> bytes | None:
    """The first bytes as ASCII-compatible text (a BOM removed, UTF-16 narrowed), or None if
    they are not text."""
    if head.startswith(codecs.BOM_UTF8):
        return head[3:]
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            body = head[2:]
            text = body[: len(body) - len(body) % 2].decode(encoding, "replace")
            return text.encode("utf-8", "replace")
    if b"\x00" in head or len(head) - len(head.translate(None, _CONTROL)) > len(head) // 200:
        return None
    return head
