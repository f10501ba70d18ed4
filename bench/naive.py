"""Goal 5: what a user would write instead, a sequential ``requests`` loop, at 50 ms latency."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from bench.harness import (
    KEY,
    Row,
    import_unlimited,
    read_payloads,
    sandbox,
    write_csv,
)

NAME = "naive"
ROWS = 200
LATENCY = 0.05
CONCURRENCY = 32


def sequential(url: str, payloads: list[dict[str, object]]) -> float:
    """One request after another, as a short script would: codes per second."""
    created = 0
    started = time.perf_counter()
    with requests.Session() as session:
        for payload in payloads:
            answer = session.post(
                f"{url}/redemption_codes", params={"api_key": KEY}, json=payload, timeout=30
            )
            created += answer.status_code == 201
    elapsed = time.perf_counter() - started
    if created != len(payloads):
        raise RuntimeError(f"requests loop created {created} of {len(payloads)}")
    return created / elapsed


def run(workdir: Path, repeat: int) -> list[Row]:
    data = write_csv(workdir / "naive.csv", ROWS)
    payloads = read_payloads(data)
    loop: list[float] = []
    ours: list[float] = []
    for _ in range(repeat):
        with sandbox(f"latency={LATENCY}") as url:
            loop.append(sequential(url, payloads))
        result = import_unlimited(data, workdir, ROWS, CONCURRENCY, f"latency={LATENCY}")
        ours.append(ROWS / result.wall)
    ratio = max(ours) / max(loop)
    figure = (
        f"importer {max(ours):.0f} codes/s (whole process, start-up included) vs sequential"
        f" requests loop {max(loop):.1f}/s: {ratio:.1f}x"
    )
    details = {"importer_wall": ours, "requests_loop": loop}
    return [
        Row(
            f"5. vs a requests loop, {ROWS} rows at 50 ms",
            figure,
            "faster (> 1x)",
            ratio > 1,
            details,
        )
    ]
