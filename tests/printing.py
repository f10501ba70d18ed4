"""Reading printed output back as a person's phone and eyes would, for the cards tests.

A PDF is rendered to grey pixels with poppler's ``pdftoppm`` and its QR codes decoded with
zxing-cpp (which also encodes them, but its reader is a separate code path); its text is
extracted with ``pdftotext``; its pages are counted and measured with ``pdfinfo``. The three
come from Debian's ``poppler-utils`` package (``.ci/run`` installs it). Without them the tests
that need them are skipped, unless ``ZYPE_REQUIRE_POPPLER=1`` (set by CI), then they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zxingcpp

TOOLS = ("pdftoppm", "pdftotext", "pdfinfo")


def require_poppler() -> None:
    """Skip the calling test without poppler's tools, or fail when CI requires them."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not found: install Debian's poppler-utils (.ci/run does)"
    if os.environ.get("ZYPE_REQUIRE_POPPLER") == "1":
        pytest.fail(f"ZYPE_REQUIRE_POPPLER=1 but {reason}")
    pytest.skip(reason)


def _run(*command: str) -> str:
    require_poppler()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command[0]} failed: {done.stderr.strip()}"
    return done.stdout


def pdf_info(pdf: Path) -> dict[str, str]:
    """``pdfinfo``'s fields (``Pages``, ``Page size``, ...)."""
    fields = {}
    for line in _run("pdfinfo", str(pdf)).splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def page_count(pdf: Path) -> int:
    return int(pdf_info(pdf)["Pages"])


def page_size_mm(pdf: Path) -> tuple[float, float]:
    """The first page's width and height in millimetres."""
    found = re.match(r"([\d.]+) x ([\d.]+) pts", pdf_info(pdf)["Page size"])
    assert found is not None
    return float(found.group(1)) * 25.4 / 72, float(found.group(2)) * 25.4 / 72


def page_texts(pdf: Path) -> list[str]:
    """The text of every page, as a reader selecting it would copy it."""
    text = _run("pdftotext", "-layout", "-enc", "UTF-8", str(pdf), "-")
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def page_images(pdf: Path, dpi: int = 150, first: int = 1, last: int | None = None) -> list[Any]:
    """Pages *first* to *last* rendered as grey pixel arrays (8-bit, one array per page)."""
    with tempfile.TemporaryDirectory(prefix="zype-pdftoppm-") as tmp:
        pages = ["-f", str(first)] + (["-l", str(last)] if last is not None else [])
        _run("pdftoppm", "-gray", "-r", str(dpi), *pages, str(pdf), f"{tmp}/page")
        return [read_pgm(path) for path in sorted(Path(tmp).glob("page*.pgm"))]


def read_pgm(path: Path) -> Any:
    """A binary PGM (what ``pdftoppm -gray`` writes) as a 2-D uint8 array."""
    data = path.read_bytes()
    found = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert found is not None, f"{path} is not a binary PGM"
    width, height = int(found.group(1)), int(found.group(2))
    pixels = np.frombuffer(data, dtype=np.uint8, offset=found.end(), count=width * height)
    return pixels.reshape(height, width)


def decode_qr(image: Any) -> list[str]:
    """The text of every QR code zxing-cpp finds in *image* (an array or a PIL image)."""
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [barcode.text for barcode in found]


__all__ = [
    "decode_qr",
    "page_count",
    "page_images",
    "page_size_mm",
    "page_texts",
    "pdf_info",
    "read_pgm",
    "require_poppler",
]
