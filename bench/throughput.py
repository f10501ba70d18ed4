"""Goal 1: the importer against the floor, a bare aiohttp loop, on a sandbox with no limits.

Both sides POST the same 20,000 rows with 32 in flight, each to a fresh sandbox process. The
importer is timed as a whole process (start-up, loading, journal and results file included), as
a user waits for it; the bare loop only from its first request to its last answer. The verdict
is on the median of the importer/bare ratios of back-to-back pairs.
"""

from __future__ import annotations

import statistics
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

    def measure_bare() -> None:
        with sandbox() as url:
            done = bare_loop(url, payloads, CONCURRENCY)
        bare.append(ROWS / done.wall)
        bare_cpu.append(done.cpu / ROWS * 1e6)

    def measure_importer() -> None:
        result = import_unlimited(data, workdir, ROWS, CONCURRENCY)
        # One POST per row; the one GET is the probe of api.url before the first write.
        if result.summary.get("methods", {}).get("POST") != ROWS:
            raise RuntimeError(f"importer: {result.summary}")
        ours.append(ROWS / result.wall)
        ours_cpu.append(result.cpu / ROWS * 1e6)
        summaries.append(float(result.summary["rate"]))

    # Each pair runs back to back, in alternating order, so a machine that speeds up or slows
    # down during the benchmark (it is shared) weighs on both sides alike.
    for i in range(repeat):
        for measure in (measure_bare, measure_importer)[:: 1 if i % 2 == 0 else -1]:
            measure()
    ratios = sorted(o / b for o, b in zip(ours, bare, strict=True))
    ratio = statistics.median(ratios)
    spread = f", pairs {ratios[0]:.2f}-{ratios[-1]:.2f}" if len(ratios) > 1 else ""
    figure = (
        f"importer {statistics.median(ours):,.0f} codes/s (whole process, median;"
        f" {statistics.median(summaries):,.0f}/s by its own summary) vs bare aiohttp loop"
        f" {statistics.median(bare):,.0f}/s: **{ratio:.2f}x** (median of {len(ratios)} pairs"
        f"{spread}); CPU per code: importer {statistics.median(ours_cpu):.0f} µs (start-up"
        f" included), bare {statistics.median(bare_cpu):.0f} µs"
    )
    details = {
        "ratios": ratios,
        "bare": bare,
        "bare_cpu_us": bare_cpu,
        "importer_wall": ours,
        "importer_cpu_us": ours_cpu,
        "importer_summary": summaries,
    }
    goal = f">= {GOAL:.1f}x bare"
    return [Row(f"1. throughput, {ROWS:,} rows", figure, goal, ratio >= GOAL, details)]
