"""``--rate auto`` against the sandbox's hidden limit: time against the least possible, 429s.

The importer is never told the limit. Each scenario starts with an empty pace cache, except the
second run against the same API, which must start from the pace the first one remembered.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.harness import KEY, Row, clean, importer, sandbox, write_csv

NAME = "auto"


@dataclass(frozen=True)
class Case:
    name: str
    rows: int
    faults: str
    #: The least possible time (s): N/L, following a change of limit.
    least: float
    ratio: float
    refused: float


CASES = (
    Case("8/s", 200, "rate_limit=8", 200 / 8, 1.25, 0.02),
    Case("35/s", 875, "rate_limit=35", 875 / 35, 1.25, 0.02),
    Case("80/s behind 150 ms", 2000, "rate_limit=80,latency=0.15", 2000 / 80, 1.25, 0.02),
    Case("60 to 15/s at 10 s", 900, "rate_limit=60,rate_limit_to=15,rate_change_at=10",
         10 + (900 - 600) / 15, 1.3, 0.03),
    Case("15 to 60/s at 10 s", 1350, "rate_limit=15,rate_limit_to=60,rate_change_at=10",
         10 + (1350 - 150) / 60, 1.3, 0.03),
    Case("40/s stated in X-RateLimit, 429 without Retry-After", 1000,
         "rate_limit=40,rate_headers=1,no_retry_after=1", 1000 / 40, 1.15, 0.01),
)  # fmt: skip


@contextlib.contextmanager
def _cache(path: Path) -> Iterator[None]:
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = before


def _one(workdir: Path, case: Case, repeat: int) -> Row:
    data = write_csv(workdir / f"auto{case.rows}.csv", case.rows)
    ratios: list[float] = []
    shares: list[float] = []
    for n in range(repeat):
        clean(workdir, data.stem)
        with _cache(workdir / f"cache-{NAME}-{n}-{case.rows}"), sandbox(case.faults) as url:
            run = importer("run", data, workdir, "--api-url", url, "--rate", "auto").check()
        if run.created != case.rows:
            raise RuntimeError(f"importer: {run.summary}")
        ratios.append(float(run.summary["duration"]) / case.least)
        shares.append(int(run.summary["throttled"]) / int(run.summary["requests"]))
    ok = max(ratios) <= case.ratio and max(shares) <= case.refused
    figure = (
        f"{max(ratios):.2f}x N/L at worst ({', '.join(f'{r:.2f}' for r in ratios)}),"
        f" {100 * max(shares):.1f}% answered 429"
    )
    goal = f"<= {case.ratio}x, <= {100 * case.refused:.0f}% 429"
    return Row(f"8. auto, {case.name}, {case.rows:,} codes", figure, goal, ok, {"ratios": ratios})


def _remembered(workdir: Path) -> Row:
    """Two runs against one API at 50/s: the second creates >= 40/s from its first seconds."""
    first = write_csv(workdir / "auto-a.csv", 1250, tag="A")
    second = write_csv(workdir / "auto-b.csv", 200, tag="R")
    with _cache(workdir / "cache-remembered"), sandbox("rate_limit=50") as url:
        clean(workdir, first.stem)
        importer("run", first, workdir, "--api-url", url, "--rate", "auto").check()
        clean(workdir, second.stem)
        run = importer("run", second, workdir, "--api-url", url, "--rate", "auto").check()
    rate = float(run.summary["rate"])
    cache = (workdir / "cache-remembered" / "zype-import" / "rates.json").read_text()
    ok = rate >= 40 and run.created == 200 and KEY not in cache
    figure = f"second run {rate:.1f} codes/s over its 200 codes, {run.summary['throttled']} 429"
    return Row("8. auto, a second run at 50/s", figure, ">= 40/s from the start", ok, {})


def run(workdir: Path, repeat: int) -> list[Row]:
    return [*(_one(workdir, case, repeat) for case in CASES), _remembered(workdir)]
