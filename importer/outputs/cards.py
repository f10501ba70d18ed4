"""Print-ready cards: the Card record the command hands over, and the PDF and zip writers.

The PDF (:func:`write_pdf`) is written by hand, streaming: each page's content stream is built,
compressed with zlib and written as soon as its ten cards are known; only the objects' byte
offsets (for the xref table) and the page numbers stay in memory. A page (A4 or Letter) holds
ten business cards of 85 x 55 mm, 2 columns by 5 rows, centred, with light grey cut marks
outside the cards along their edges. A card carries, as real text in the PDF core fonts
(Helvetica, Helvetica-Bold, Courier-Bold, WinAnsiEncoding): the title, the code (Courier-Bold,
shrunk to fit a long code), what it unlocks and the expiry line; on its right a vector QR code
(one filled rectangle per horizontal run of dark modules, 4-module quiet zone, 32 mm square);
and, when set, the logo (a JPEG goes in as it is, DCTDecode; a PNG is decoded with Pillow when
it is installed, else left out with a warning).

The zip (:func:`write_zip`) holds one image per card, ``<code>.png`` or ``<code>.svg``, and
``index.csv`` (UTF-8 with BOM, CRLF, cells made inert for Excel).

QR codes are encoded by zxing-cpp (C++; ``create_barcode``, error level M, the smallest version)
with the mask chosen as the standard says: all eight scored by its penalty rules. Measured on
1,000 URLs of 48 characters (version 4, this build machine): zxing-cpp 0.17-0.20 ms a code,
segno 0.8 ms with a fixed mask 0 (which the standard allows but is not the best-scoring mask)
and 3.7-4.3 ms with its own mask choice. The symbol comes back as one byte a module, and the
writers draw from that matrix: the PDF's ``re`` operators come from a table built once per
symbol size (formatting their numbers was most of a path's cost), and the zip's PNG (1-bit,
10 pixels a module) and SVG are written here too, all with the 4-module quiet zone.

Pages are deflated at level 3 (:data:`DEFLATE`): 0.29 ms a page of ten cards and 5.9 KiB,
against 0.69 ms and 4.6 KiB at zlib's default 6 (2,000 cards, this build machine).
"""

from __future__ import annotations

import importlib
import io
import logging
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, BinaryIO, NamedTuple, cast

import numpy as np
import numpy.typing as npt
import zxingcpp

from importer.errors import OutputError
from importer.outputs.results import text_cell

log = logging.getLogger("importer")


class Card(NamedTuple):
    """One code's card: what it says and what its QR code holds."""

    row: int
    code: str
    #: What the QR code holds: the filled-in ``cards.url``, or the bare code.
    qr: str
    #: The filled-in ``cards.url`` ("" when none is set).
    url: str
    title: str
    unlocks: str
    #: The expiry line as a person reads it ("Valid until 31 December 2031").
    expiry: str
    #: ``YYYY-MM-DD``.
    expiration_date: str


MM = 72 / 25.4
#: Page sizes in points.
PAGES = {"A4": (595.276, 841.89), "Letter": (612.0, 792.0)}
CARD_W, CARD_H = 85 * MM, 55 * MM
COLUMNS, ROWS = 2, 5
PER_PAGE = COLUMNS * ROWS
#: zlib level of the pages' content streams (see the module docstring).
DEFLATE = 3
QR_SIZE = 32 * MM
PAD = 4 * MM
#: Average glyph width of Helvetica, in ems, rounded up (for shrinking text to fit).
HELVETICA_EM = 0.56
COURIER_EM = 0.6


#: Light modules around the symbol, on each side (the standard's minimum for QR codes).
QUIET = 4


class QrMatrix(NamedTuple):
    """A QR symbol without its quiet zone: ``dark[r][c]`` is True for a dark module."""

    side: int
    dark: npt.NDArray[np.bool_]


def qr_matrix(data: str) -> QrMatrix:
    """The QR code of *data*: error level M, the smallest version, the mask the standard's
    penalty rules choose (see the module docstring)."""
    barcode = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    # One byte a module, 0 for dark; the stubs type Image with .shape only, but it exports the
    # buffer protocol (and __array_interface__).
    image = np.asarray(cast(Any, barcode.to_image(scale=1, add_quiet_zones=False)))
    return QrMatrix(int(image.shape[0]), image == 0)


def _runs(matrix: QrMatrix) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Every horizontal run of dark modules: where it starts, as ``row * (side + 1) + column``,
    and its length (a light column after each row keeps a run from reaching the next row)."""
    n = matrix.side
    padded = np.zeros((n, n + 2), np.int8)
    padded[:, 1 : n + 1] = matrix.dark
    edges = np.diff(padded).ravel()
    starts = np.flatnonzero(edges == 1)
    return starts, np.flatnonzero(edges == -1) - starts


#: Per symbol side, the ``re`` operator of every run, indexed ``start * (side + 2) + length``
#: (formatting three numbers a run was most of the cost of a QR path). Only up to this side
#: (version 10, 57 modules: about 200,000 entries); a larger symbol's run joins two parts.
_FULL_TABLE_SIDE = 57
_RUN_OPS: dict[int, list[bytes]] = {}
_RUN_PARTS: dict[int, tuple[list[bytes], list[bytes]]] = {}


def qr_path(matrix: QrMatrix) -> bytes:
    """The dark modules as ``x y n 1 re`` rectangles in module units, the origin at the top
    left of the quiet zone, y down (the caller's ``cm`` scales and flips; no fill operator)."""
    n = matrix.side
    width = n + 1
    starts, lengths = _runs(matrix)
    if n <= _FULL_TABLE_SIDE:
        ops = _RUN_OPS.get(n)
        if ops is None:
            ops = _RUN_OPS[n] = [
                b"%d %d %d 1 re\n" % (at % width + QUIET, at // width + QUIET, length)
                for at in range(n * width)
                for length in range(width + 1)
            ]
        return b"".join(map(ops.__getitem__, (starts * (width + 1) + lengths).tolist()))
    parts = _RUN_PARTS.get(n)
    if parts is None:
        parts = _RUN_PARTS[n] = (
            [b"%d %d " % (at % width + QUIET, at // width + QUIET) for at in range(n * width)],
            [b"%d 1 re\n" % length for length in range(width + 1)],
        )
    origins, sizes = parts
    pairs = zip(
        map(origins.__getitem__, starts.tolist()),
        map(sizes.__getitem__, lengths.tolist()),
        strict=True,
    )
    return b"".join(chain.from_iterable(pairs))


# -- PDF -----------------------------------------------------------------------------------------


def pdf_text(text: str) -> bytes:
    """*text* as a PDF string literal in WinAnsiEncoding (what it cannot hold becomes ``?``)."""
    raw = text.encode("cp1252", errors="replace")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    raw = raw.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return b"(" + raw + b")"


class _Writer:
    """Objects written as they come; the offsets kept for the xref table."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.position = 0
        self.offsets: dict[int, int] = {}
        self.next_id = 1

    def reserve(self) -> int:
        number = self.next_id
        self.next_id += 1
        return number

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.position += len(data)

    def obj(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.position
        self.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    def stream(self, number: int, header: bytes, data: bytes) -> None:
        self.obj(
            number, b"<<" + header + b" /Length %d>>\nstream\n" % len(data) + data + b"\nendstream"
        )

    def finish(self, root: int) -> None:
        start = self.position
        size = self.next_id
        lines = [b"xref\n0 %d\n" % size, b"0000000000 65535 f \n"]
        lines += [b"%010d 00000 n \n" % self.offsets[n] for n in range(1, size)]
        self.write(b"".join(lines))
        self.write(
            b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, start)
        )


def _image(writer: _Writer, logo: bytes) -> tuple[int, int, int] | None:
    """The logo as an image XObject: its object number, width and height in pixels."""
    if logo.startswith(b"\xff\xd8"):
        size = _jpeg_size(logo)
        if size is None:
            log.warning("cards.logo: cannot read the JPEG's size: the cards go without a logo")
            return None
        width, height, components = size
        space = {1: b"/DeviceGray", 4: b"/DeviceCMYK"}.get(components, b"/DeviceRGB")
        number = writer.reserve()
        header = (
            b" /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace " % (width, height)
            + space
            + b" /BitsPerComponent 8 /Filter /DCTDecode"
        )
        if components == 4:
            header += b" /Decode [1 0 1 0 1 0 1 0]"
        writer.stream(number, header, logo)
        return number, width, height
    try:
        pil: Any = importlib.import_module("PIL.Image")
        picture = pil.open(io.BytesIO(logo))
        picture.load()
    except Exception:  # no Pillow, or a PNG it cannot read
        log.warning("cards.logo: a PNG logo needs Pillow (or use a JPEG): the cards go without it")
        return None
    rgba = picture.convert("RGBA")
    width, height = rgba.size
    rgb = rgba.convert("RGB").tobytes()
    alpha = rgba.getchannel("A").tobytes()
    mask = writer.reserve()
    writer.stream(
        mask,
        b" /Type /XObject /Subtype /Image /Width %d /Height %d"
        b" /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode" % (width, height),
        zlib.compress(alpha),
    )
    number = writer.reserve()
    writer.stream(
        number,
        b" /Type /XObject /Subtype /Image /Width %d /Height %d"
        b" /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode"
        b" /SMask %d 0 R" % (width, height, mask),
        zlib.compress(rgb),
    )
    return number, width, height


def _jpeg_size(data: bytes) -> tuple[int, int, int] | None:
    """A JPEG's width, height and colour components, from its SOF marker."""
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height, data[at + 9]
        at += 2 + length
    return None


def _fit(text: str, size: float, width: float, em: float, smallest: float) -> float:
    """The font size, at most *size*, at which *text* fits in *width* points."""
    if not text:
        return size
    return max(smallest, min(size, width / (em * len(text))))


def _qr_runs(card: Card, x: float, y: float) -> list[bytes]:
    """The QR code, quiet zone included, as one filled path of rectangles (one per horizontal
    run of dark modules), its box's lower-left corner at (*x*, *y*)."""
    matrix = qr_matrix(card.qr)
    module = QR_SIZE / (matrix.side + 2 * QUIET)
    return [
        b"q 0 g %.5f 0 0 %.5f %.3f %.3f cm\n" % (module, -module, x, y + QR_SIZE),
        qr_path(matrix),
        b"f Q\n",
    ]


def _card(card: Card, x: float, y: float, logo: tuple[int, int, int] | None) -> list[bytes]:
    """One card's drawing operators, its lower-left corner at (*x*, *y*)."""
    qr_x = x + CARD_W - QR_SIZE - 2 * MM
    qr_y = y + (CARD_H - QR_SIZE) / 2
    out = _qr_runs(card, qr_x, qr_y)
    left = x + PAD
    width = qr_x - left
    top = y + CARD_H - PAD
    if logo is not None:
        _, w, h = logo
        scale = min(width / w, 10 * MM / h)
        out.append(
            b"q %.3f 0 0 %.3f %.3f %.3f cm /Logo Do Q\n"
            % (w * scale, h * scale, left, top - h * scale)
        )
        top -= h * scale + 2 * MM
    out.append(b"0 g\n")
    lines: list[tuple[bytes, float, str, float]] = []  # font, size, text, baseline
    if card.title:
        size = _fit(card.title, 11, width, HELVETICA_EM, 6)
        lines.append((b"/F2", size, card.title, top - size))
    code_size = _fit(card.code, 16, width, COURIER_EM, 4)
    code_y = y + CARD_H / 2 - code_size / 3
    lines.append((b"/F3", code_size, card.code, code_y))
    if card.unlocks:
        size = _fit(card.unlocks, 9, width, HELVETICA_EM, 5)
        lines.append((b"/F1", size, card.unlocks, code_y - 6 - size))
    if card.expiry:
        size = _fit(card.expiry, 8, width, HELVETICA_EM, 5)
        lines.append((b"/F1", size, card.expiry, y + PAD))
    for font, size, text, baseline in lines:
        out.append(
            b"BT %s %.2f Tf %.3f %.3f Td %s Tj ET\n" % (font, size, left, baseline, pdf_text(text))
        )
    return out


def _cut_marks(width: float, height: float) -> bytes:
    """Light grey cut marks along the card grid's edges, outside the cards."""
    x0 = (width - COLUMNS * CARD_W) / 2
    y0 = (height - ROWS * CARD_H) / 2
    x1, y1 = x0 + COLUMNS * CARD_W, y0 + ROWS * CARD_H
    gap = 1.5 * MM
    mark_x = max(0.0, min(8 * MM, x0 - gap - 1))
    mark_y = max(0.0, min(8 * MM, y0 - gap - 1))
    out = [b"q 0.7 G 0.3 w\n"]
    for c in range(COLUMNS + 1):
        x = x0 + c * CARD_W
        if mark_y > 0:
            out.append(b"%.3f %.3f m %.3f %.3f l S\n" % (x, y0 - gap, x, y0 - gap - mark_y))
            out.append(b"%.3f %.3f m %.3f %.3f l S\n" % (x, y1 + gap, x, y1 + gap + mark_y))
    for r in range(ROWS + 1):
        y = y0 + r * CARD_H
        if mark_x > 0:
            out.append(b"%.3f %.3f m %.3f %.3f l S\n" % (x0 - gap, y, x0 - gap - mark_x, y))
            out.append(b"%.3f %.3f m %.3f %.3f l S\n" % (x1 + gap, y, x1 + gap + mark_x, y))
    out.append(b"Q\n")
    return b"".join(out)


def _pages(cards: Iterable[Card]) -> Iterator[list[Card]]:
    page: list[Card] = []
    for card in cards:
        page.append(card)
        if len(page) == PER_PAGE:
            yield page
            page = []
    if page:
        yield page


def write_pdf(handle: BinaryIO, cards: Iterable[Card], *, page: str, logo: bytes | None) -> int:
    """Write the cards as a PDF; return the number of pages."""
    if page not in PAGES:
        raise OutputError(f"cards: unknown page size {page!r} (A4 or Letter)")
    width, height = PAGES[page]
    writer = _Writer(handle)
    writer.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    catalog, pages_id = writer.reserve(), writer.reserve()
    fonts = []
    for name in (b"Helvetica", b"Helvetica-Bold", b"Courier-Bold"):
        number = writer.reserve()
        writer.obj(
            number,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /"
            + name
            + b" /Encoding /WinAnsiEncoding >>",
        )
        fonts.append(number)
    image = _image(writer, logo) if logo else None
    resources = b"<< /Font << /F1 %d 0 R /F2 %d 0 R /F3 %d 0 R >>" % tuple(fonts)
    if image is not None:
        resources += b" /XObject << /Logo %d 0 R >>" % image[0]
    resources += b" >>"
    marks = _cut_marks(width, height)
    x0 = (width - COLUMNS * CARD_W) / 2
    y0 = (height - ROWS * CARD_H) / 2
    kids: list[int] = []
    for sheet in _pages(cards):
        parts = [marks]
        for n, card in enumerate(sheet):
            column, row = n % COLUMNS, n // COLUMNS
            x = x0 + column * CARD_W
            y = y0 + (ROWS - 1 - row) * CARD_H
            parts.extend(_card(card, x, y, image))
        content = writer.reserve()
        writer.stream(content, b" /Filter /FlateDecode", zlib.compress(b"".join(parts), DEFLATE))
        number = writer.reserve()
        writer.obj(
            number,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.3f %.3f]"
            b" /Resources %s /Contents %d 0 R >>" % (pages_id, width, height, resources, content),
        )
        kids.append(number)
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    writer.obj(pages_id, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids)))
    writer.obj(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    writer.finish(catalog)
    return len(kids)


# -- zip -----------------------------------------------------------------------------------------

#: Pixels a module in the zipped images.
PIXELS = 10


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_png(matrix: QrMatrix, scale: int = PIXELS) -> bytes:
    """The QR code as a 1-bit greyscale PNG, quiet zone included, *scale* pixels a module."""
    light = np.pad(~matrix.dark, QUIET, constant_values=True)
    # One pixel row per module row (1 = white, padded to whole bytes), each then repeated.
    packed = np.packbits(np.repeat(light, scale, axis=1), axis=1)
    rows = np.zeros((packed.shape[0], packed.shape[1] + 1), np.uint8)  # leading 0: no filter
    rows[:, 1:] = packed
    raw = np.repeat(rows, scale, axis=0)
    side = light.shape[0] * scale
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def qr_svg(matrix: QrMatrix, scale: int = PIXELS) -> bytes:
    """The QR code as an SVG of one path (a rectangle per run of dark modules), quiet zone
    included, *scale* pixels a module."""
    side = matrix.side + 2 * QUIET
    width = matrix.side + 1
    starts, lengths = _runs(matrix)
    path = "".join(
        f"M{at % width + QUIET} {at // width + QUIET}h{length}v1h-{length}z"
        for at, length in zip(starts.tolist(), lengths.tolist(), strict=True)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{side * scale}" height="{side * scale}"'
        f' viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{path}"/></svg>\n'
    ).encode("ascii")


INDEX_COLUMNS = ("row", "code", "url", "expiration_date", "unlocks")


def write_zip(handle: BinaryIO, cards: Iterable[Card], *, image: str) -> int:
    """Write one image per card and ``index.csv`` as a zip; return the number of cards."""
    if image not in ("png", "svg"):
        raise OutputError(f"cards: unknown image kind {image!r} (png or svg)")
    index = ["\ufeff" + ",".join(INDEX_COLUMNS) + "\r\n"]
    count = 0
    with zipfile.ZipFile(handle, "w") as archive:
        for card in cards:
            matrix = qr_matrix(card.qr)
            if image == "png":
                data, compress = qr_png(matrix), zipfile.ZIP_STORED
            else:
                data, compress = qr_svg(matrix), zipfile.ZIP_DEFLATED
            archive.writestr(f"{card.code}.{image}", data, compress_type=compress)
            cells = (str(card.row), card.code, card.url, card.expiration_date, card.unlocks)
            index.append(",".join(text_cell(cell) for cell in cells) + "\r\n")
            count += 1
        archive.writestr(
            "index.csv", "".join(index).encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED
        )
    return count
