"""Goal 8: ``cards`` of 10,000 created codes (1,000 A4 pages) within 10x the time of ``validate``
of the same sheet (25x at worst), in the same run, under 600 MiB, sampled QR codes decoding.

The journal is built with the importer's own API, as a run that created every code would leave
it (every record marked ``sending``, then recorded ``created`` with a title), instead of sending
10,000 requests. ``validate`` and ``cards`` then run in turn, each as a whole process, so the
ratio holds start-up (pandas, the sheet) as a user's command line does. Sampled pages are
rendered with ``pdftoppm`` and their QR codes decoded with zxing-cpp.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.harness import Row, importer, write_csv

NAME = "cards"
ROWS = 10_000
PER_PAGE = 10
GOAL = 10.0
WORST = 25.0
MEBIBYTES = 600.0
#: Pages whose QR codes are decoded: the first, one in the middle, the last.
SAMPLED = (1, 500, 1000)
URL = "https://watch.example.tv/redeem?code={code}"


def build_journal(data: Path, journal: Path) -> list[str]:
    """A journal in which every row of *data* is created; returns the codes in row order."""
    from importer.config import InputConfig
    from importer.journal import open_journal
    from importer.models import Outcome, Status
    from importer.rules.validate import validate
    from importer.sheet.load import load

    checked = validate(load(data, InputConfig()), InputConfig(), date.today())
    if checked.issues or len(checked.records) != ROWS:
        raise RuntimeError(f"{len(checked.issues)} invalid rows in the generated data")
    db = open_journal(journal)
    try:
        db.bind_target("sandbox")
        db.mark_sending(checked.records)
        for n, record in enumerate(checked.records):
            outcome = Outcome(
                Status.CREATED,
                api_id=f"{n:024x}",
                http_status=201,
                attempts=1,
                content_title=f"Feature film no. {n % 997}",
            )
            db.record(record, outcome)
        db.flush()
    finally:
        db.close()
    return [record.code for record in checked.records]


def decode_pages(pdf: Path, pages: tuple[int, ...]) -> dict[int, list[str]]:
    """The QR codes' texts on each of *pages* (rendered at 150 dpi), by page number."""
    import numpy as np
    import zxingcpp

    found: dict[int, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cards-") as tmp:
        for page in pages:
            stem = f"{tmp}/p{page}"
            subprocess.run(
                ["pdftoppm", "-gray", "-r", "150", "-f", str(page), "-l", str(page), "-singlefile",
                 str(pdf), stem],
                check=True,
            )  # fmt: skip
            raw = Path(f"{stem}.pgm").read_bytes()
            head = raw.split(maxsplit=4)
            width, height = int(head[1]), int(head[2])
            pixels = np.frombuffer(raw[len(raw) - width * height :], dtype=np.uint8)
            image = pixels.reshape(height, width)
            codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
            found[page] = sorted(code.text for code in codes)
    return found


def run(workdir: Path, repeat: int) -> list[Row]:
    data = write_csv(workdir / "cards.csv", ROWS, tag="C")
    started = time.perf_counter()
    codes = build_journal(data, workdir / "cards.journal")
    built = time.perf_counter() - started
    config = workdir / "cards.yaml"
    config.write_text(f"cards:\n  url: '{URL}'\n", encoding="utf-8")
    pdf = workdir / "cards.cards.pdf"
    validates, cards = [], []
    for _ in range(repeat):  # in turn, so both meet the same load on the machine
        validates.append(importer("validate", data, workdir).check())
        cards.append(
            importer("cards", data, workdir, "--config", str(config), "--output", str(pdf)).check()
        )
    v_wall = min(r.wall for r in validates)
    c_wall = min(r.wall for r in cards)
    ratio = c_wall / v_wall
    rss = max(r.peak_rss_mb or 0.0 for r in cards)
    pages = int(cards[0].summary.get("pages", 0))
    printed = int(cards[0].summary.get("cards", 0))
    sampled = tuple(p for p in SAMPLED if p <= pages)
    decoded_ok = 0
    if shutil.which("pdftoppm"):
        found = decode_pages(pdf, sampled)
        for page, texts in found.items():
            first = (page - 1) * PER_PAGE
            wanted = sorted(URL.format(code=c) for c in codes[first : first + PER_PAGE])
            decoded_ok += texts == wanted
    ok = (
        ratio <= GOAL
        and rss < MEBIBYTES
        and printed == ROWS
        and pages == ROWS // PER_PAGE
        and decoded_ok == len(SAMPLED)
    )
    return [
        Row(
            f"9. cards of {ROWS:,} codes against validate of the same sheet",
            f"{c_wall:.1f} s against {v_wall:.1f} s: {ratio:.1f}x"
            f" ({', '.join(f'{r.wall:.1f}' for r in cards)} against"
            f" {', '.join(f'{r.wall:.1f}' for r in validates)}), peak RSS {rss:,.0f} MiB,"
            f" {pages:,} pages, QR codes of {decoded_ok}/{len(SAMPLED)} sampled pages decoded",
            f"<= {GOAL:.0f}x ({WORST:.0f}x at worst), < {MEBIBYTES:.0f} MiB",
            ok,
            {
                "cards_walls": [r.wall for r in cards],
                "validate_walls": [r.wall for r in validates],
                "ratio": ratio,
                "rss_mib": rss,
                "pages": pages,
                "journal_seconds": built,
            },
        )
    ]
