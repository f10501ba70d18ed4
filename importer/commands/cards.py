"""``zype-import cards``: print-ready cards of every code the journal holds as created.

It reads the journal only (read-only, without its lock, like ``status``): no API key, no
request, and it can run while an import is going. A code is printed when the journal records it
as ``created`` (an updated code stays ``created``, with the values Zype now holds); never an
invalid, rejected, failed, pending, deleting or deleted row.

Which order (:func:`card_codes`): the sheet's. The sheet is loaded and checked as ``run`` does,
and each created code is found by its record key (its code, or for a generated code the row's
content and occurrence), so it takes the row number the results file shows today, rows inserted
above included, and the N codes of a ``quantity`` row follow each other in their order. A code
whose row is no longer in the sheet (deleted, or edited into an invalid row) is still a live code
on Zype: it is printed too, at the row number the journal last knew, with a warning. A code the
journal knows under two keys (a generated code pasted back into the sheet) is printed once.
What a card says comes from the journal, not the sheet: a row edited since its code was created
(and not ``run --update``) shows what Zype holds. Codes already expired are left out, with a
warning: a card for them would redeem nothing.

The output is a PDF (:func:`importer.outputs.cards.write_pdf`) or, for a name ending in
``.zip``, one image per code and ``index.csv`` (:func:`importer.outputs.cards.write_zip`),
written atomically: a killed run leaves no half file.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO, TextIO

from importer.commands.context import Paths
from importer.config import CardsConfig, Settings, expiry_text, fill_url
from importer.errors import ConfigError, UsageError
from importer.journal import Created, bound_target, created_codes, read_only
from importer.models import Record
from importer.outputs.cards import Card, write_pdf, write_zip
from importer.outputs.files import atomic_write, check_writable
from importer.outputs.progress import Progress
from importer.rules.checked import load_checked

log = logging.getLogger("importer")

#: What a card says a code unlocks when the journal has no title for it (codes created before
#: the journal kept Zype's ``content_title``, or an answer without one).
KIND_NAMES = {
    "video": "a video",
    "playlist": "a playlist",
    "plan": "a subscription plan",
    "pass_plan": "a pass plan",
}
#: The file kinds ``--output`` may name.
OUTPUTS = (".pdf", ".zip")


@dataclass(frozen=True)
class Chosen:
    """The created codes to print, in the sheet's order, and what was left out."""

    codes: list[Created]
    #: Codes whose row is no longer in the sheet (printed, at their last known row).
    not_in_sheet: list[Created]
    #: Codes already expired (not printed).
    expired: list[Created]


def card_codes(records: Sequence[Record], created: Sequence[Created], today: date) -> Chosen:
    """Which created codes are printed, in which order (see the module docstring). Pure."""
    by_key = {code.record.key: code for code in created}
    placed: list[tuple[int, int, Created]] = []
    seen: set[str] = set()
    for record in records:
        code = by_key.pop(record.key, None)
        if code is not None and code.api_id not in seen:
            seen.add(code.api_id)
            placed.append((record.row, 0, code._replace(record=_at_row(code.record, record.row))))
    gone: list[Created] = []
    for code in by_key.values():  # in the journal's row order
        if code.api_id not in seen:
            seen.add(code.api_id)
            gone.append(code)
            placed.append((code.record.row, 1, code))
    # Stable: sheet rows keep their order; a removed row's code goes after the sheet's own
    # codes of the row number it last had.
    placed.sort(key=lambda item: (item[0], item[1]))
    today_text = today.isoformat()
    codes: list[Created] = []
    expired: list[Created] = []
    for _, _, code in placed:
        (expired if code.record.expiration_date < today_text else codes).append(code)
    return Chosen(codes, [c for c in gone if c.record.expiration_date >= today_text], expired)


def _at_row(record: Record, row: int) -> Record:
    if record.row == row:
        return record
    return Record(
        row,
        record.key,
        record.code,
        record.expiration_date,
        record.kind,
        record.entitlement_id,
        record.generated,
    )


def unlocks(code: Created) -> str:
    """What the card says the code unlocks: Zype's title, else the kind ("a video")."""
    return code.content_title or KIND_NAMES.get(code.record.kind, code.record.kind)


def make_card(code: Created, config: CardsConfig) -> Card:
    """One code's card."""
    record = code.record
    url = fill_url(config.url, record.code) if config.url else ""
    return Card(
        row=record.row,
        code=record.code,
        qr=url or record.code,
        url=url,
        title=config.title,
        unlocks=unlocks(code),
        expiry=expiry_text(config.expiry, date.fromisoformat(record.expiration_date)),
        expiration_date=record.expiration_date,
    )


def default_output(input_path: Path) -> Path:
    """``<input>.cards.pdf`` beside the input."""
    return input_path.with_name(f"{input_path.stem}.cards.pdf")


def read_logo(config: CardsConfig) -> bytes | None:
    """The logo's bytes (a PNG or JPEG), or None; ConfigError naming ``cards.logo`` otherwise."""
    if not config.logo:
        return None
    try:
        data = Path(config.logo).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"'cards.logo': cannot read {config.logo} ({exc.strerror or exc})"
        ) from None
    if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        raise ConfigError(f"'cards.logo': {config.logo} is not a PNG or JPEG image")
    return data


def cards_file(
    paths: Paths,
    settings: Settings,
    *,
    today: date,
    output: Path | None = None,
    summary: Path | None = None,
    stream: TextIO | None = None,
    quiet: bool = False,
    progress: bool = True,
) -> int:
    """Write the cards of every created code; 0 when written. Every refusal (a sheet never
    run, nothing created, an unwritable output, a logo that is not an image) is a
    :class:`~importer.errors.UsageError` raised before anything is written (exit 2)."""
    started = time.monotonic()
    stream = sys.stderr if stream is None else stream
    out = output or default_output(paths.input)
    kind = out.suffix.lower()
    if kind not in OUTPUTS:
        raise UsageError(f"--output {out}: the cards go into a .pdf, or a .zip of images")
    logo = read_logo(settings.cards)
    if not paths.journal.exists():
        raise UsageError(
            f"{paths.journal}: no journal: this sheet was never run, so no code was created"
            " (run `zype-import run` first, or pass --journal)"
        )
    check_writable(out, "cards file")
    if summary is not None:
        check_writable(summary, "summary")
    checked = load_checked(paths.input, settings.input, today)
    with read_only(paths.journal) as db:
        created = created_codes(db)
        target = bound_target(db)
    if not created:
        raise UsageError(
            f"{paths.journal}: the journal holds no created code: nothing to print"
            " (run `zype-import run` first)"
        )
    chosen = card_codes(checked.records, created, today)
    if not chosen.codes:
        raise UsageError(
            f"{paths.journal}: every created code has expired ({len(chosen.expired)}):"
            " nothing to print"
        )
    _warn(chosen, target)
    bar = Progress(
        len(chosen.codes),
        stream=stream,
        interval=settings.output.log_interval,
        enabled=progress and not quiet,
    )
    cards = (make_card(code, settings.cards) for code in chosen.codes)
    pages = 0

    def write(handle: BinaryIO) -> None:
        nonlocal pages
        with bar.redirect_logging():
            if kind == ".zip":
                write_zip(handle, _counted(cards, bar), image=settings.cards.image)
            else:
                pages = write_pdf(handle, _counted(cards, bar), page=settings.cards.page, logo=logo)

    try:
        atomic_write(out, write, binary=True)
    finally:
        bar.close()
    duration = time.monotonic() - started
    figures = {
        "command": "cards",
        "input": str(paths.input),
        "journal": str(paths.journal),
        "output": str(out),
        "cards": len(chosen.codes),
        "pages": pages,
        "not_in_sheet": len(chosen.not_in_sheet),
        "expired": len(chosen.expired),
        "duration": round(duration, 3),
    }
    if summary is not None:
        atomic_write(summary, lambda h: json.dump(figures, h, indent=2, sort_keys=True))
    if not quiet:
        where = f" on {pages} {settings.cards.page} pages" if kind == ".pdf" else ""
        print(
            f"{len(chosen.codes)} cards{where} in {duration:.1f} s: {out}",
            file=stream,
        )
    return 0


def _counted(cards: Iterator[Card], bar: Progress) -> Iterator[Card]:
    for card in cards:
        yield card
        bar.advance("printed")


def _warn(chosen: Chosen, target: str | None) -> None:
    if target == "sandbox":
        log.warning("these codes were created in a sandbox, not on Zype: the cards redeem nothing")
    if chosen.not_in_sheet:
        rows = ", ".join(str(c.record.row) for c in chosen.not_in_sheet[:10])
        more = " ..." if len(chosen.not_in_sheet) > 10 else ""
        log.warning(
            "%d created code(s) whose row is no longer in the sheet are printed too, at the"
            " row they last had (%s%s)",
            len(chosen.not_in_sheet),
            rows,
            more,
        )
    if chosen.expired:
        log.warning(
            "%d created code(s) have expired and are not printed (first: %s, %s)",
            len(chosen.expired),
            chosen.expired[0].record.code,
            chosen.expired[0].record.expiration_date,
        )
