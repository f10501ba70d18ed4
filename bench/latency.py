"""Goal 3: 50 ms per answer, 32 in flight: how close to the 640/s the latency allows."""

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

NAME = "latency"
ROWS = 6_400
CONCURRENCY = 32
LATENCY = 0.05
GOAL = 0.9


def run(workdir: Path, repeat: int) -> list[Row]:
    ceiling = CONCURRENCY / LATENCY
    data = write_csv(workdir / "latency.csv", ROWS)
    payloads = read_payloads(data)
    bare: list[float] = []
    ours: list[float] = []
    walls: list[float] = []
    for _ in range(repeat):
        with sandbox(f"latency={LATENCY}") as url:
            bare.append(ROWS / bare_loop(url, payloads, CONCURRENCY).wall)
        result = import_unlimited(data, workdir, ROWS, CONCURRENCY, f"latency={LATENCY}")
        ours.append(float(result.summary["rate"]))
        walls.append(ROWS / result.wall)
    best = max(ours)
    figure = (
        f"importer {best:.0f} codes/s = {best / ceiling:.0%} of {ceiling:.0f} (by its summary;"
        f" {max(walls):.0f}/s whole process); bare loop {max(bare):.0f}/s ="
        f" {max(bare) / ceiling:.0%}; importer/bare {best / max(bare):.2f}x"
    )
    goal = f">= {GOAL * ceiling:.0f}/s ({GOAL:.0%})"
    details = {"importer": ours, "importer_wall": walls, "bare": bare}
    return [
        Row(
            f"3. latency {LATENCY * 1000:.0f} ms, {ROWS:,} rows",
            figure,
            goal,
            best >= GOAL * ceiling,
            details,
        )
    ]
