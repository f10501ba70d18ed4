"""Files as they really arrive, through the real command line under a memory limit: misnamed
workbooks read as what they are, files that are no spreadsheet refused in one line (exit 2),
hostile workbooks never crash the process.

Each ``zype-import validate`` runs in a child process whose address space is capped
(``RLIMIT_AS``), so a regression fails here instead of swapping the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sheet import hostile as fx

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DATA = Path(__file__).resolve().parent / "data"
GIB = 1 << 30

#: The importer's own entry point, with the address space capped first.
_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from importer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def validate(
    path: Path, *extra: str, limit: int = GIB, timeout: float = 120
) -> tuple[int, str, dict[str, object], float]:
    """Run ``validate`` on *path*: exit code, stderr, the summary JSON and the seconds taken."""
    summary = path.with_name(path.name + ".summary.json")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _LIMITED.format(limit=limit), "validate", str(path),
         "--summary", str(summary), "--results", str(path) + ".results.csv", *extra],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode >= 0, f"killed by signal {-done.returncode}: {done.stderr[-600:]}"
    assert "Traceback" not in done.stderr
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return done.returncode, done.stderr, data, seconds


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error:" in line]


def test_an_old_xls_named_xlsx_is_read_as_xls(tmp_path: Path) -> None:
    path = tmp_path / "partner.xlsx"
    shutil.copyfile(SAMPLES / "messy.xls", path)
    code, stderr, summary, _ = validate(path)
    assert "is an Excel 97-2003 workbook (.xls) but is named with '.xlsx'; reading it as .xls" in (
        stderr
    )
    assert code == 1  # the corpus holds bad rows on purpose
    assert summary["would_create"] == 16


def test_a_workbook_named_csv_is_read_as_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    shutil.copyfile(SAMPLES / "messy.xlsx", path)
    code, stderr, summary, _ = validate(path)
    assert "is an Excel workbook (.xlsx) but is named with '.csv'; reading it as .xlsx" in stderr
    assert (code, summary["would_create"]) == (1, 16)


def test_a_web_page_saved_as_xls_says_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_text(
        "<html><body><table><tr><td>Code</td><td>Expires</td></tr>"
        "<tr><td>A1</td><td>2031-12-31</td></tr></table></body></html>",
        encoding="utf-8",
    )
    code, stderr, _, _ = validate(path)
    assert code == 2
    assert errors(stderr) == [
        f"zype-import: error: {path}: this is a web page (HTML) saved as .xls, not a workbook:"
        " open it in Excel (or LibreOffice) and save it as .xlsx, or export the sheet as .csv"
    ]


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("list.csv", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "this is a PDF document saved as .csv"),
        ("codes.xlsx", b"\x89PNG\r\n\x1a\n" + bytes(64), "this is a PNG image saved as .xlsx"),
    ],
)
def test_a_file_that_is_no_spreadsheet_is_one_line(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    code, stderr, _, _ = validate(path)
    assert code == 2
    (line,) = errors(stderr)
    assert line.startswith(f"zype-import: error: {path}: {said}")


def test_the_stray_cell_workbook_reads_its_three_rows(tmp_path: Path) -> None:
    """The issue's 5 KB workbook: one value at XFD1048576 aborted the process (a 512 GiB
    allocation); now its data is read, with a warning naming the cell, under 1 GiB."""
    sheet = fx.sheet_xml([fx.HEADER, *fx.ROWS], "A1:XFD1048576", extra=fx.stray_row("XFD1048576"))
    path = fx.write_xlsx(tmp_path / "stray.xlsx", sheet)
    assert path.stat().st_size < 5 << 10
    code, stderr, summary, _ = validate(path)
    assert "ignoring 1 cell(s) far from the data (XFD1048576); reading A1:C4" in stderr
    assert (code, summary["would_create"], summary["rows"]) == (0, 3, 3)


def test_the_3_gb_inflating_workbook_is_refused_in_one_line(tmp_path: Path) -> None:
    path = fx.write_xlsx(tmp_path / "huge.xlsx", fx.big_text_sheet(1_000_000, 3000))
    code, stderr, _, seconds = validate(path, limit=3 * GIB // 2, timeout=150)
    assert code == 2
    (line,) = errors(stderr)
    assert "inflates to 2,929 MiB" in line
    assert seconds < 150


def test_an_xls_stray_cell_is_dropped_not_read_as_a_65536_by_256_grid(tmp_path: Path) -> None:
    """One value at IV65536 in a 6 KB .xls made calamine build its whole grid: 17 s and 1.3 GB
    here. It is blanked in a copy, and the three codes read, with a warning naming it."""
    path = tmp_path / "old.xls"
    shutil.copyfile(DATA / "stray_cell.xls", path)
    code, stderr, summary, _ = validate(path)
    assert "sheet 'Codes': ignoring 1 cell(s) far from the data (IV65536); reading A1:C4" in stderr
    assert (code, summary["would_create"], summary["rows"]) == (0, 3, 3)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".xls"] == ["old.xls"]
