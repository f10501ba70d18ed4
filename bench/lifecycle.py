"""Goal 7: reading what Zype holds costs about N/100 requests, not N (audit and undo).

3,000 codes are created in a fresh sandbox holding 500 codes of other people, then read back
with ``audit`` and ``undo`` (its preview, which only reads) at the default rate of 10
requests/s, as against Zype. The baseline is what a GET per code would cost at that rate:
3,000 requests, five minutes. Then ``undo --yes`` deletes them all, at a rate the sandbox
takes, to time the engine on DELETEs.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import Row, importer, sandbox, write_csv

NAME = "lifecycle"
ROWS = 3_000
OTHERS = 500
RATE = 10.0
#: The most requests a read of ROWS codes may take: a page per hundred, and a few more.
ALLOWED = ROWS // 100 + 10


def run(workdir: Path, repeat: int) -> list[Row]:
    data = write_csv(workdir / "life.csv", ROWS, tag="L")
    rows: list[Row] = []
    with sandbox(others=OTHERS) as url:
        importer("run", data, workdir, "--api-url", url, "--rate", "1000").check()
        reads = {
            name: importer(name, data, workdir, "--api-url", url, "--rate", str(RATE)).check()
            for name in ("audit", "undo")
        }
        delete = importer(
            "undo", data, workdir, "--api-url", url, "--rate", "1000", "--concurrency", "16",
            "--yes",
        ).check()  # fmt: skip
    baseline = ROWS / RATE
    for name, done in reads.items():
        used = int(done.summary.get("requests", -1))
        rows.append(
            Row(
                f"7. {name} reads {ROWS:,} codes ({OTHERS} others')",
                f"{used} requests, {done.wall:.1f} s at {RATE:.0f}/s"
                f" (a GET per code: {ROWS:,} requests, {baseline:.0f} s)",
                f"<= {ALLOWED} requests",
                0 < used <= ALLOWED,
                {"requests": used, "wall": done.wall, "baseline_seconds": baseline},
            )
        )
    deleted = int(delete.summary.get("counts", {}).get("deleted", 0))
    rows.append(
        Row(
            f"7c. undo --yes deletes {ROWS:,} codes",
            f"{deleted:,} deleted in {delete.wall:.1f} s"
            f" ({deleted / delete.wall:,.0f} codes/s at --rate 1000)",
            "every code deleted",
            deleted == ROWS,
            {"deleted": deleted, "wall": delete.wall},
        )
    )
    return rows
