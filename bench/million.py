"""Goal 4: a million rows: validate under 10 s and 1 GB; a finished rerun under 10 s, no request.

The finished journal is built with the importer's own API (what a run that created every code
would have left behind: every record marked ``sending``, then recorded ``created``), bound to the
sandbox the rerun talks to, instead of sending a million requests.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from bench.harness import Row, importer, sandbox, write_csv

NAME = "million"
ROWS = 1_000_000
SECONDS = 10.0
MEGABYTES = 1024.0


def build_journal(data: Path, journal: Path, target: str) -> float:
    """A journal in which every row of *data* is created; returns the seconds it took."""
    from importer.config import InputConfig
    from importer.journal import open_journal
    from importer.models import Outcome, Status
    from importer.rules.validate import validate
    from importer.sheet.load import load

    started = time.perf_counter()
    checked = validate(load(data, InputConfig()), InputConfig(), date.today())
    if checked.issues or len(checked.records) != ROWS:
        raise RuntimeError(f"{len(checked.issues)} invalid rows in the generated data")
    db = open_journal(journal)
    try:
        db.bind_target(target)
        db.mark_sending(checked.records)
        for n, record in enumerate(checked.records):
            # What the API answers: its own id, and the code in groups of four.
            nice = "-".join(record.code[i : i + 4] for i in range(0, len(record.code), 4))
            outcome = Outcome(
                Status.CREATED, api_id=f"{n:024x}", nice_code=nice, http_status=201, attempts=1
            )
            db.record(record, outcome)
        db.flush()
    finally:
        db.close()
    return time.perf_counter() - started


def run(workdir: Path, repeat: int) -> list[Row]:
    started = time.perf_counter()
    data = write_csv(workdir / "million.csv", ROWS)
    generated = time.perf_counter() - started
    checks = [importer("validate", data, workdir).check() for _ in range(repeat)]
    walls = [c.wall for c in checks]
    rss = [c.peak_rss_mb or 0.0 for c in checks]
    valid_ok = min(walls) < SECONDS and max(rss) < MEGABYTES
    rows = [
        Row(
            f"4a. validate {ROWS:,} rows",
            f"{min(walls):.1f} s ({', '.join(f'{w:.1f}' for w in walls)}),"
            f" peak RSS {max(rss):,.0f} MB",
            f"< {SECONDS:.0f} s, < {MEGABYTES / 1024:.0f} GB",
            valid_ok,
            {"walls": walls, "rss_mb": rss, "csv_seconds": generated},
        )
    ]
    with sandbox() as url:
        journal = workdir / "million.journal"
        built = build_journal(data, journal, url.rstrip("/"))
        reruns = [
            importer("run", data, workdir, "--api-url", url, "--rate", "100").check()
            for _ in range(repeat)
        ]
    requests = max(int(r.summary.get("requests", -1)) for r in reruns)
    walls = [r.wall for r in reruns]
    durations = [float(r.summary.get("duration", 0.0)) for r in reruns]
    rss = [r.peak_rss_mb or 0.0 for r in reruns]
    created = min(r.created for r in reruns)
    ok = min(walls) < SECONDS and requests == 0 and created == ROWS
    rows.append(
        Row(
            f"4b. finished rerun, {ROWS:,} rows",
            f"{min(walls):.1f} s whole process ({min(durations):.1f} s by its summary),"
            f" {requests} requests, peak RSS {max(rss):,.0f} MB",
            f"< {SECONDS:.0f} s, 0 requests",
            ok,
            {"walls": walls, "durations": durations, "rss_mb": rss, "journal_seconds": built},
        )
    )
    return rows
