"""Print-ready cards: the Card record the command hands over, and a placeholder renderer.

The renderer (a streaming PDF and zip writer) is not in this branch yet: both writers refuse
with a one-line error (exit 2) and, through the atomic write, leave no file behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO, NamedTuple

from importer.errors import OutputError

#: What the placeholder writers say.
NOT_YET = "cards: the card renderer is not in this build yet; nothing was written"


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


def write_pdf(handle: BinaryIO, cards: Iterable[Card], *, page: str, logo: bytes | None) -> int:
    """Write the cards as a PDF; return the number of pages."""
    raise OutputError(NOT_YET)


def write_zip(handle: BinaryIO, cards: Iterable[Card], *, image: str) -> int:
    """Write one image per card and ``index.csv`` as a zip; return the number of cards."""
    raise OutputError(NOT_YET)
