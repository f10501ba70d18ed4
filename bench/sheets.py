"""Goal 6: ``validate`` of a 1,000,000-row xlsx written by LibreOffice takes at most 2.5x the
time of the same rows as CSV, under 1.5 GiB, with the same results; and the xlsx readers side
by side on that file.

The fixture is made, not committed: a CSV of text codes (half of them all digits with leading
zeros), four dates and 24-hex ids, which LibreOffice (``soffice --headless``, from
``apt-get install libreoffice-calc-nogui``) converts to xlsx with the code and id columns typed
as text and the dates as date cells, as a person formatting the columns would. Converting takes
about 100 s here, so both files are kept in ``bench/out/fixtures`` for the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.harness import GNU_TIME, PYTHON, ROOT, Row, env, importer, write_csv

NAME = "sheets"
ROWS = 1_000_000
RATIO = 2.5
MEBIBYTES = 1536.0
FIXTURES = ROOT / "bench" / "out" / "fixtures"
#: LibreOffice's CSV import options: comma, double quote, UTF-8, from line 1, then per column
#: "number/format" with 2 = text and 5 = year-month-day date.
_CSV_FILTER = "CSV:44,34,76,1,1/2/2/5/3/2/4/2/5/2/6/2"

#: Each candidate reads the file given as argv[1] in a fresh process and prints, as JSON, how
#: many rows it got and the Python types of the first data row's code and date cells (text
#: and a date are what the validator needs).
CANDIDATES = {
    "pandas read_csv (the CSV, for reference)": """
import sys, json, pandas as pd
f = pd.read_csv(sys.argv[1], dtype=object, keep_default_na=False, na_filter=False)
print(json.dumps({"rows": len(f), "types": [type(v).__name__ for v in f.iloc[1, :2]]}))
""",
    "openpyxl read-only, values only": """
import sys, json, openpyxl
book = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)
rows = list(book.worksheets[0].iter_rows(values_only=True))
print(json.dumps({"rows": len(rows) - 1, "types": [type(v).__name__ for v in rows[2][:2]]}))
""",
    'pandas read_excel(engine="calamine")': """
import sys, json, pandas as pd
f = pd.read_excel(sys.argv[1], engine="calamine", dtype=object, keep_default_na=False,
                  na_filter=False)
print(json.dumps({"rows": len(f), "types": [type(v).__name__ for v in f.iloc[1, :2]]}))
""",
    "python-calamine to_python": """
import sys, json, python_calamine as pc
book = pc.CalamineWorkbook.from_path(sys.argv[1])
rows = book.get_sheet_by_name(book.sheet_names[0]).to_python(skip_empty_area=False)
print(json.dumps({"rows": len(rows) - 1, "types": [type(v).__name__ for v in rows[2][:2]]}))
""",
    "the importer's loader (python-calamine, cells made text)": """
import sys, json
from importer.config import InputConfig
from importer.sheet.load import load
f = load(sys.argv[1], InputConfig()).frame
print(json.dumps({"rows": len(f), "types": [repr(v) for v in f.iloc[1, :2]]}))
""",
}


def write_rows(path: Path, n: int) -> Path:
    """The fixture's rows as CSV: codes ``00000001`` (leading zeros) and ``X00000000`` in
    turn, one of the four far-off dates, one entitlement column filled in turn."""
    return write_csv(path, n, seed=11, code=lambda i: f"{i:08d}" if i % 2 else f"X{i:08d}")


def fixture(n: int = ROWS) -> tuple[Path, Path]:
    """(the CSV, the same rows as an xlsx written by LibreOffice), made once and kept."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    data = FIXTURES / f"sheets-{n}.csv"
    book = FIXTURES / f"sheets-{n}-libreoffice.xlsx"  # its own stem: its own results file
    if data.exists() and book.exists():
        return data, book
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise RuntimeError("LibreOffice writes the fixture: apt-get install libreoffice-calc-nogui")
    partial = FIXTURES / "partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    write_rows(partial / data.name, n)
    convert = [soffice, "--headless", f"--infilter={_CSV_FILTER}", "--convert-to", "xlsx"]
    subprocess.run(
        [*convert, "--outdir", str(partial), str(partial / data.name)],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    os.replace(partial / data.with_suffix(".xlsx").name, book)
    os.replace(partial / data.name, data)  # the CSV last: both present means both are whole
    shutil.rmtree(partial)
    return data, book


def measure(code: str, path: Path) -> tuple[float, float, dict[str, object]]:
    """Run *code* on *path* in a fresh Python: (seconds, peak RSS in MiB, what it printed).

    The peak comes from GNU time where present: a child forked straight from this process
    reports this process's own peak as its floor (Linux carries the high-water mark across
    exec), and after the million-row benchmark that is over a gigabyte.
    """
    timing = path.with_name("measure.time")
    prefix = [GNU_TIME, "-f", "%M", "-o", str(timing)] if Path(GNU_TIME).exists() else []
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*prefix, PYTHON, "-c", code, str(path)], env=env(), stdout=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"candidate failed: {code.strip().splitlines()[0]}")
    peak_kb = float(timing.read_text().split()[-1]) if prefix else float(usage.ru_maxrss)
    timing.unlink(missing_ok=True)
    return wall, peak_kb / 1024, json.loads(out)


def run(workdir: Path, repeat: int) -> list[Row]:
    data, book = fixture()
    rows: list[Row] = []
    for name, code in CANDIDATES.items():
        wall, rss, seen = measure(code, data if "read_csv" in name else book)
        rows.append(
            Row(
                f"6. read {ROWS:,} rows: {name}",
                f"{wall:.1f} s, peak RSS {rss:,.0f} MiB, {seen['rows']:,} rows, first code and"
                f" date as {', '.join(map(str, seen['types']))}",
                "reported",
                None,
                {"seconds": wall, "rss_mib": rss, **seen},
            )
        )
    csv_runs, xlsx_runs = [], []
    for _ in range(repeat):  # in turns, so that a change in the machine's load hits both
        csv_runs.append(importer("validate", data, workdir).check())
        xlsx_runs.append(importer("validate", book, workdir).check())
    same = (workdir / f"{data.stem}.results.csv").read_bytes() == (
        workdir / f"{book.stem}.results.csv"
    ).read_bytes()
    csv_wall = min(r.wall for r in csv_runs)
    xlsx_wall = min(r.wall for r in xlsx_runs)
    rss = max(r.peak_rss_mb or 0.0 for r in xlsx_runs)
    ratio = xlsx_wall / csv_wall
    rows.append(
        Row(
            f"6. validate {ROWS:,} rows: LibreOffice xlsx vs CSV",
            f"xlsx {xlsx_wall:.1f} s ({', '.join(f'{r.wall:.1f}' for r in xlsx_runs)}),"
            f" CSV {csv_wall:.1f} s ({', '.join(f'{r.wall:.1f}' for r in csv_runs)}):"
            f" {ratio:.2f}x; xlsx peak RSS {rss:,.0f} MiB;"
            f" results {'identical' if same else 'DIFFERENT'}",
            f"<= {RATIO}x, < {MEBIBYTES / 1024:.1f} GiB, same results",
            ratio <= RATIO and rss < MEBIBYTES and same,
            {
                "xlsx_walls": [r.wall for r in xlsx_runs],
                "csv_walls": [r.wall for r in csv_runs],
                "xlsx_rss_mib": [r.peak_rss_mb for r in xlsx_runs],
                "csv_rss_mib": [r.peak_rss_mb for r in csv_runs],
                "same_results": same,
            },
        )
    )
    return rows
