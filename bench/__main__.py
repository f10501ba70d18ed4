"""``python -m bench [NAME ...] [--repeat N]``: run the benchmarks, print the table, write it to
``bench/out/results.md``; exit 1 if a goal is missed, 2 if a benchmark could not run."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import auto, cards, latency, lifecycle, million, naive, rate, sheets, throughput
from bench.harness import ROOT, Row, machine

BENCHMARKS = {
    m.NAME: m for m in (throughput, rate, auto, latency, million, naive, sheets, lifecycle, cards)
}
OUT = ROOT / "bench" / "out"


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | figure | goal | result |", "|---|---|---|---|"]
    lines += [f"| {r.benchmark} | {r.figure} | {r.goal} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (default 2)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    names = args.names or list(BENCHMARKS)
    command = " ".join(["python -m bench", *sys.argv[1:]])
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    broken = False
    started = time.perf_counter()
    for name in names:
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            try:
                new = BENCHMARKS[name].run(Path(tmp), max(args.repeat, 1))
            except Exception as exc:
                traceback.print_exc()
                new = [Row(name, f"could not run: {exc}".splitlines()[0], "", False)]
                broken = True
        rows += new
        for row in new:
            print(f"{row.verdict:4}  {row.benchmark}: {row.figure}", flush=True)
        print(f"      ({name}: {time.perf_counter() - began:.0f} s)", flush=True)
    took = time.perf_counter() - started
    text = table(rows)
    print()
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    report = (
        f"# Benchmarks\n\nCommand: `{command}` ({took:.0f} s)\n\nMachine: {machine()}\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M:%S')}.\n\n{text}\n"
    )
    (OUT / "results.md").write_text(report, encoding="utf-8")
    details = {r.benchmark: {"figure": r.figure, "ok": r.ok, **r.details} for r in rows}
    (OUT / "results.json").write_text(json.dumps(details, indent=2), encoding="utf-8")
    print(f"\n{OUT / 'results.md'} ({took:.0f} s)")
    if broken:
        return 2
    return 1 if any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
