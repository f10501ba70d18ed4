"""Goal 1: the importer against the floor, a bare aiohttp loop, on a sandbox with no limits.

Both sides POST the same 20,000 rows with 32 in flight, each to a fresh sandbox process. The
importer is timed as a whole process (start-up, loading, journal and results file included), as
a user waits for it; the bare loop only from its first request to its last answer.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import (
    Row,
    bare_loop,
    import_unlimited,
    read_payloads,
    sandbox,
    write_csv,
)

NAME = "throughput"
ROWS = 20_000
CONCURRENCY = 32
GOAL = 0.8


def run(workdir: Path, repeat: int) -> list[Row]:
    data = write_csv(workdir / "throughput.csv", ROWS)
    payloads = read_payloads(data)
    bare: list[float] = []
    bare_cpu: list[float] = []
    ours: list[float] = []
    ours_cpu: list[float] = []
    summaries: list[float] = []
    for _ in range(repeat):
        with sandbox() as url:
            done = bare_loop(url, payloads, CONCURRENCY)
        bare.append(ROWS / done.wall)
        bare_cpu.append(done.cpu / ROWS * 1e6)
        result = import_unlimited(data, workdir, ROWS, CONCURRENCY)
        if result.summary.get("requests") != ROWS:
            raise RuntimeError(f"importer: {result.summary}")
        ours.append(ROWS / result.wall)
        ours_cpu.append(result.cpu / ROWS * 1e6)
        summaries.append(float(result.summary["rate"]))
    ratio = max(ours) / max(bare)
    figure = (
        f"importer {max(ours):,.0f} codes/s (whole process; {max(summaries):,.0f}/s by its own"
        f" summary) vs bare aiohttp loop {max(bare):,.0f}/s: **{ratio:.2f}x**; CPU per code:"
        f" importer {min(ours_cpu):.0f} µs (start-up included), bare {min(bare_cpu):.0f} µs"
    )
    details = {
        "bare": bare,
        "bare_cpu_us": bare_cpu,
        "importer_wall": ours,
        "importer_cpu_us": ours_cpu,
        "importer_summary": summaries,
    }
    goal = f">= {GOAL:.1f}x bare"
    return [Row(f"1. throughput, {ROWS:,} rows", figure, goal, ratio >= GOAL, details)]
