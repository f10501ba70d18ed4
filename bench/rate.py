"""Goal 2: rate precision. Sandbox and importer both set to 100/s: close to 100/s, no 429."""

from __future__ import annotations

from pathlib import Path

from bench.harness import Row, clean, importer, sandbox, write_csv

NAME = "rate"
ROWS = 3_000
LIMIT = 100
GOAL = 97.0


def run(workdir: Path, repeat: int) -> list[Row]:
    data = write_csv(workdir / "rate.csv", ROWS)
    rates: list[float] = []
    throttled: list[int] = []
    for _ in range(repeat):
        clean(workdir, data.stem)
        with sandbox(f"rate_limit={LIMIT}") as url:
            result = importer("run", data, workdir, "--api-url", url, "--rate", str(LIMIT)).check()
        if result.created != ROWS:
            raise RuntimeError(f"importer: {result.summary}")
        rates.append(float(result.summary["rate"]))
        throttled.append(int(result.summary["throttled"]))
    ok = min(rates) >= GOAL and max(throttled) == 0
    figure = (
        f"{min(rates):.1f} codes/s at worst ({', '.join(f'{r:.1f}' for r in rates)}),"
        f" {sum(throttled)} answered 429 ({', '.join(map(str, throttled))})"
    )
    goal = f">= {GOAL:.0f}/s, no 429 (limit {LIMIT}/s)"
    details = {"rates": rates, "throttled": throttled}
    return [Row(f"2. rate precision, {ROWS:,} rows", figure, goal, ok, details)]
