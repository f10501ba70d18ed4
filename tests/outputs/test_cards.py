"""The QR pieces of the card writers: the zxing-cpp matrix, the PDF path drawn from it (both the
table and the two-part way), and the zipped PNG and SVG. The whole PDF and zip, rendered and read
back, are tested in ``tests/commands/test_cards.py``."""

from __future__ import annotations

import io
import re
from xml.etree import ElementTree

import numpy as np
import numpy.typing as npt
import pytest
import zxingcpp
from PIL import Image

from importer.outputs import cards
from importer.outputs.cards import QUIET, QrMatrix, qr_matrix, qr_path, qr_png, qr_svg

URL = "https://watch.example.tv/redeem?code=CODE-{n:04d}"


def _from_rectangles(side: int, rectangles: list[tuple[int, int, int]]) -> npt.NDArray[np.bool_]:
    """The dark modules (quiet zone included) that (x, y, width) one-module-high rectangles
    cover; each module at most once."""
    grid = np.zeros((side, side), bool)
    for x, y, width in rectangles:
        assert width > 0
        assert not grid[y, x : x + width].any()
        grid[y, x : x + width] = True
    return grid


def _with_quiet_zone(matrix: QrMatrix) -> npt.NDArray[np.bool_]:
    return np.pad(matrix.dark, QUIET, constant_values=False)


def _path_rectangles(path: bytes) -> list[tuple[int, int, int]]:
    found = re.findall(rb"(\d+) (\d+) (\d+) 1 re\n", path)
    assert b"".join(b"%s %s %s 1 re\n" % f for f in found) == path
    return [(int(x), int(y), int(w)) for x, y, w in found]


def _decode(pixels: npt.NDArray[np.uint8]) -> zxingcpp.Barcode:
    found = zxingcpp.read_barcode(pixels, formats=zxingcpp.BarcodeFormat.QRCode)
    assert found is not None
    return found


def test_the_matrix_is_level_m_and_its_mask_chosen_not_fixed() -> None:
    masks = set()
    for n in range(40):
        matrix = qr_matrix(URL.format(n=n))
        assert matrix.side == 33  # version 4: the smallest for 48 characters at level M
        light = np.where(_with_quiet_zone(matrix), 0, 255).astype(np.uint8)
        found = _decode(light.repeat(4, 0).repeat(4, 1))
        assert (found.text, found.ec_level) == (URL.format(n=n), "M")
        masks.add(found.extra["DataMask"])
    assert len(masks) > 2


@pytest.mark.parametrize("full_table", [True, False])
@pytest.mark.parametrize("text", [URL.format(n=7), "X" * 300, "Ω" * 200])
def test_the_pdf_path_covers_exactly_the_dark_modules(
    text: str, full_table: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = qr_matrix(text)
    if not full_table:  # a symbol larger than the table is made for
        monkeypatch.setattr(cards, "_FULL_TABLE_SIDE", 0)
    side = matrix.side + 2 * QUIET
    drawn = _from_rectangles(side, _path_rectangles(qr_path(matrix)))
    assert (drawn == _with_quiet_zone(matrix)).all()


def test_the_png_is_one_bit_ten_pixels_a_module_with_the_quiet_zone() -> None:
    matrix = qr_matrix(URL.format(n=3))
    image = Image.open(io.BytesIO(qr_png(matrix)))
    side = (matrix.side + 2 * QUIET) * 10
    assert (image.mode, image.size) == ("1", (side, side))
    pixels = np.asarray(image.convert("L"))
    modules = pixels[5::10, 5::10] == 0
    assert (modules == _with_quiet_zone(matrix)).all()
    assert _decode(pixels).text == URL.format(n=3)


def test_the_svg_is_one_path_of_the_dark_modules() -> None:
    matrix = qr_matrix(URL.format(n=5))
    root = ElementTree.fromstring(qr_svg(matrix))  # noqa: S314 (our own output)
    side = matrix.side + 2 * QUIET
    assert root.get("viewBox") == f"0 0 {side} {side}"
    assert root.get("width") == str(side * 10)
    (path,) = [e for e in root if e.tag.endswith("path")]
    found = re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", path.get("d", ""))
    drawn = _from_rectangles(side, [(int(x), int(y), int(w)) for x, y, w in found])
    assert (drawn == _with_quiet_zone(matrix)).all()
