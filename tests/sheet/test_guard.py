"""guard.plan before python-calamine: hostile workbooks made here, read under a memory limit.

Every read that could blow up runs in a child process under ``RLIMIT_AS``, so a regression
fails (an abort, a MemoryError, a non-zero exit) instead of swapping the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from importer.sheet import guard
from tests.sheet import hostile as fx

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30

#: Run in a child: guard.plan, then calamine on the planned path; print one JSON line.
_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
limit = {limit}
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from pathlib import Path
from importer.sheet import guard
started = time.monotonic()
try:
    with guard.guarded(Path({path!r}), {kind!r}) as plan:
        from python_calamine import CalamineWorkbook
        book = CalamineWorkbook.from_path(str(plan.path))
        rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
        out = {{"rows": [[str(v) for v in r] for r in rows[:10]], "height": len(rows),
               "width": max(map(len, rows), default=0), "warnings": list(plan.warnings),
               "cleaned": plan.path != Path({path!r})}}
except guard.WorkbookRefused as exc:
    out = {{"refused": str(exc)}}
out["seconds"] = time.monotonic() - started
out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps(out))
"""


def run_limited(path: Path, limit: int, timeout: float, kind: str = "xlsx") -> dict[str, object]:
    code = _CHILD.format(root=str(ROOT), limit=limit, path=str(path), kind=kind)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"child died ({done.returncode}): {done.stderr[-800:]}"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def data_rows() -> list[list[str]]:
    return [fx.HEADER, *fx.ROWS]


def expect_data(result: dict[str, object]) -> None:
    assert result["height"] == 4
    assert result["width"] == 3
    assert result["rows"] == data_rows()


# --- stray cells -------------------------------------------------------------------------------


def test_calamine_alone_aborts_on_a_stray_cell(tmp_path: Path) -> None:
    """The premise: without the guard, one cell at XFD1048576 kills the process (SIGABRT)."""
    path = fx.write_xlsx(
        tmp_path / "s.xlsx", fx.sheet_xml(data_rows(), extra=fx.stray_row("XFD1048576"))
    )
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
        "from python_calamine import CalamineWorkbook;"
        f"CalamineWorkbook.from_path({str(path)!r}).get_sheet_by_index(0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False
    )
    assert done.returncode != 0


@pytest.mark.parametrize("dimension", ["A1:XFD1048576", "A1:C4", None])
def test_stray_cell_at_the_grids_end_is_dropped_with_a_warning(
    tmp_path: Path, dimension: str | None
) -> None:
    sheet = fx.sheet_xml(data_rows(), dimension, extra=fx.stray_row("XFD1048576"))
    result = run_limited(fx.write_xlsx(tmp_path / "s.xlsx", sheet), GIB, 60)
    expect_data(result)
    assert result["cleaned"] is True
    assert result["warnings"] == [
        "sheet 'Codes': ignoring 1 cell(s) far from the data (XFD1048576); reading A1:C4"
    ]
    assert isinstance(result["peak_mib"], int)
    assert result["peak_mib"] < 1024


def test_a_lying_dimension_alone_is_harmless(tmp_path: Path) -> None:
    """calamine sizes its grid from the cells, not from <dimension>: nothing to clean."""
    sheet = fx.sheet_xml(data_rows(), "A1:XFD1048576")
    result = run_limited(fx.write_xlsx(tmp_path / "d.xlsx", sheet), GIB, 60)
    expect_data(result)
    assert result["warnings"] == []
    assert result["cleaned"] is False


def test_a_styled_empty_far_cell_is_no_value(tmp_path: Path) -> None:
    """<c r="XFD1048576" s="1"/> holds nothing; calamine skips it; it is dropped silently."""
    extra = '<row r="1048576"><c r="XFD1048576" s="1"/></row>'
    result = run_limited(
        fx.write_xlsx(tmp_path / "e.xlsx", fx.sheet_xml(data_rows(), extra=extra)), GIB, 60
    )
    expect_data(result)
    assert result["warnings"] == []


def test_a_cell_outside_excels_grid_is_dropped(tmp_path: Path) -> None:
    extra = fx.stray_row("XFE1048577")
    result = run_limited(
        fx.write_xlsx(tmp_path / "o.xlsx", fx.sheet_xml(data_rows(), extra=extra)), GIB, 60
    )
    expect_data(result)
    assert "XFE1048577" in str(result["warnings"])


def test_a_nearby_stray_is_read_as_it_is(tmp_path: Path) -> None:
    """A value at Z500 makes a 500 x 26 grid: well within budget, nothing dropped."""
    extra = fx.stray_row("Z500")
    result = run_limited(
        fx.write_xlsx(tmp_path / "n.xlsx", fx.sheet_xml(data_rows(), extra=extra)), GIB, 60
    )
    assert result["height"] == 500
    assert result["width"] == 26
    assert result["warnings"] == []


def test_many_far_cells_are_refused_not_dropped(tmp_path: Path) -> None:
    """More than MAX_STRAY_CELLS far values may be real data: refused, naming the area."""
    extra = "".join(fx.stray_row(f"XFD{1_000_000 + n}") for n in range(guard.MAX_STRAY_CELLS + 5))
    result = run_limited(
        fx.write_xlsx(tmp_path / "m.xlsx", fx.sheet_xml(data_rows(), extra=extra)), GIB, 60
    )
    message = str(result["refused"])
    assert "A1:XFD1000104" in message
    assert "\n" not in message


def test_a_sparse_sheet_spread_over_the_grid_is_refused(tmp_path: Path) -> None:
    """Values every 900 rows down to row 1,048,576 and every 90 columns: no gap ends the data
    and the grid would be 17 billion cells; refused in one line."""
    rows = "".join(
        f'<row r="{r}">{fx.cell(fx.reference(r - 1, 0), "x")}'
        f"{fx.cell(fx.reference(r - 1, (r // 900 * 90) % 16_384 or 1), 'y')}</row>"
        for r in range(1, 1_048_577, 900)
    )
    rows += fx.stray_row("XFD1048576")
    result = run_limited(fx.write_xlsx(tmp_path / "p.xlsx", fx.sheet_xml([], extra=rows)), GIB, 60)
    assert "spreads" in str(result["refused"])


def test_cells_without_references_are_placed_as_calamine_places_them(tmp_path: Path) -> None:
    """A million empty <row/> elements then a cell without r="": calamine puts it at row
    1,048,576; the exact parser sees that too and the sheet is refused, not crashed on."""
    extra = "<row/>" * 1_048_571 + '<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = fx.sheet_xml(data_rows(), extra=extra)
    result = run_limited(fx.write_xlsx(tmp_path / "r.xlsx", sheet), GIB, 120)
    assert "far from its data" in str(result["refused"])


def test_a_prefixed_far_cell_is_seen(tmp_path: Path) -> None:
    extra = (
        '<row r="1048576"><x:c r="XFD1048576" t="inlineStr"><x:is><x:t>x</x:t></x:is></x:c></row>'
    )
    sheet = fx.sheet_xml(data_rows(), extra=extra).replace(
        b"<worksheet ",
        b'<worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ',
    )
    result = run_limited(fx.write_xlsx(tmp_path / "x.xlsx", sheet), GIB, 60)
    assert "XFD1048576" in str(result["refused"])


# --- zip bombs and text ------------------------------------------------------------------------


def test_a_sheet_inflating_to_3_gb_is_refused_quickly(tmp_path: Path) -> None:
    """A million rows of 3,000-character cells: about 22 MB on disk, 3 GB inflated. calamine
    alone took 5.8 GiB and 30 s here; the declared size refuses it before inflating."""
    path = fx.write_xlsx(tmp_path / "b.xlsx", fx.big_text_sheet(1_000_000, 3000))
    assert path.stat().st_size < 32 << 20  # the was 22 MB
    result = run_limited(path, 3 * GIB // 2, 150)
    assert "inflates to 2,929 MiB" in str(result["refused"])
    assert isinstance(result["seconds"], float)
    assert result["seconds"] < 150


def test_a_zip_lying_about_its_size_is_refused(tmp_path: Path) -> None:
    path = fx.write_xlsx(tmp_path / "l.xlsx", fx.big_text_sheet(50_000, 3000), zip64=False)
    fx.lie_about_size(path, "xl/worksheets/sheet1.xml", 1000)
    result = run_limited(path, 3 * GIB // 2, 60)
    assert "damaged" in str(result["refused"])


def test_one_shared_string_copied_into_a_million_cells_is_refused(tmp_path: Path) -> None:
    """calamine copies a shared string into each cell that uses it: 3 KB becomes 3 GB."""
    path = fx.write_xlsx(
        tmp_path / "a.xlsx", fx.shared_amplifier_sheet(1_000_000), shared=["a" * 3000]
    )
    result = run_limited(path, 3 * GIB // 2, 150)
    assert "of cell text" in str(result["refused"])


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    sheet = fx.sheet_xml(data_rows()).replace(
        b"<worksheet ", b'<!DOCTYPE w [<!ENTITY a "aaaa">]><worksheet ', 1
    )
    with pytest.raises(guard.WorkbookRefused, match="entities"):
        guard.plan(fx.write_xlsx(tmp_path / "e.xlsx", sheet), "xlsx")


def test_a_damaged_zip_is_one_line(tmp_path: Path) -> None:
    path = fx.write_xlsx(tmp_path / "t.xlsx", fx.sheet_xml(data_rows()))
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(guard.WorkbookRefused, match="damaged"):
        guard.plan(cut, "xlsx")


# --- ordinary workbooks ------------------------------------------------------------------------


def test_a_clean_workbook_is_read_in_place(tmp_path: Path) -> None:
    path = fx.write_xlsx(tmp_path / "c.xlsx", fx.sheet_xml(data_rows(), "A1:C4"))
    made = guard.plan(path, "xlsx")
    assert made.path == path
    assert made.warnings == ()
    check = made.sheets["Codes"]
    assert (check.cells, check.rows, check.columns, check.declared) == (12, 4, 3, "A1:C4")


def test_shared_strings_and_sheet_names_with_entities(tmp_path: Path) -> None:
    path = fx.write_xlsx(
        tmp_path / "s.xlsx",
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>',
        shared=["Promo Code"],
        name="Codes & more",
    )
    assert list(guard.plan(path, "xlsx").sheets) == ["Codes & more"]


def test_the_cleaned_copy_is_removed(tmp_path: Path) -> None:
    sheet = fx.sheet_xml(data_rows(), extra=fx.stray_row("XFD1048576"))
    with guard.guarded(fx.write_xlsx(tmp_path / "s.xlsx", sheet), "xlsx") as made:
        cleaned = made.path
        assert cleaned.exists()
        with zipfile.ZipFile(cleaned) as archive:
            assert b"XFD1048576" not in archive.read("xl/worksheets/sheet1.xml")
    assert not cleaned.exists()


# --- xlsb and xls ------------------------------------------------------------------------------


def xlsb_cells() -> bytes:
    return (
        fx.xlsb_row(0)
        + fx.xlsb_text(0, "Promo Code")
        + fx.xlsb_text(1, "Expires")
        + fx.xlsb_row(1)
        + fx.xlsb_text(0, "00123")
        + fx.xlsb_number(1, 47848)
        + fx.xlsb_row(2)
        + fx.xlsb_error(0, 0x2A)
        + fx.xlsb_number(1, 1.5)
    )


def test_xlsb_is_read_and_its_error_cells_found(tmp_path: Path) -> None:
    path = fx.write_xlsb(tmp_path / "b.xlsb", xlsb_cells(), dimension=(2, 1))
    made = guard.plan(path, "xlsb")
    check = made.sheets["Codes"]
    assert (check.cells, check.rows, check.columns) == (6, 3, 2)
    assert check.errors == {(2, 0): "#N/A"}  # calamine itself gives ''
    result = run_limited(path, GIB, 60, kind="xlsb")
    assert result["rows"] == [["Promo Code", "Expires"], ["00123", "47848.0"], ["", "1.5"]]


def test_xlsb_stray_cell_is_refused_not_crashed_on(tmp_path: Path) -> None:
    cells = xlsb_cells() + fx.xlsb_row(1_048_575) + fx.xlsb_number(16_383, 1.0)
    result = run_limited(
        fx.write_xlsb(tmp_path / "s.xlsb", cells, dimension=(2, 1)), GIB, 60, "xlsb"
    )
    assert "XFD1048576" in str(result["refused"])


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_xls_written_by_libreoffice(tmp_path: Path) -> None:
    """calamine reads .xls: dates as dates, whole numbers as int, formula errors as ''."""
    fods = tmp_path / "t.fods"
    fods.write_text(textwrap.dedent(_FODS), encoding="utf-8")
    subprocess.run(
        ["soffice", "--headless", "--convert-to", "xls", "--outdir", str(tmp_path), str(fods)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    path = tmp_path / "t.xls"
    assert guard.plan(path, "xls").path == path
    result = run_limited(path, GIB, 60, kind="xls")
    assert result["rows"] == [["Promo Code", "Expires"], ["00123", "2031-12-31"], ["", "5"]]


_FODS = """\
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0"
 xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" office:version="1.2"
 office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
<office:automatic-styles><number:date-style style:name="d"><number:year number:style="long"/>
<number:text>-</number:text><number:month number:style="long"/><number:text>-</number:text>
<number:day number:style="long"/></number:date-style>
<style:style style:name="date" style:family="table-cell" style:data-style-name="d"/>
</office:automatic-styles><office:body><office:spreadsheet><table:table table:name="Codes">
<table:table-row><table:table-cell office:value-type="string"><text:p>Promo Code</text:p>
</table:table-cell><table:table-cell office:value-type="string"><text:p>Expires</text:p>
</table:table-cell></table:table-row><table:table-row><table:table-cell
 office:value-type="string"><text:p>00123</text:p></table:table-cell><table:table-cell
 table:style-name="date" office:value-type="date" office:date-value="2031-12-31">
<text:p>2031-12-31</text:p></table:table-cell></table:table-row><table:table-row>
<table:table-cell table:formula="of:=NA()" office:value-type="string"><text:p>#N/A</text:p>
</table:table-cell><table:table-cell office:value-type="float" office:value="5"><text:p>5</text:p>
</table:table-cell></table:table-row></table:table></office:spreadsheet></office:body>
</office:document>
"""


# --- ods: calamine's own limits still hold -----------------------------------------------------


def test_ods_with_17_billion_repeated_cells_is_refused_by_calamine(tmp_path: Path) -> None:
    path = fx.write_ods(tmp_path / "r.ods", fx.ods_repeated_bomb())
    assert guard.plan(path, "ods").path == path  # guard leaves .ods to calamine's cell limit
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
        "from python_calamine import CalamineWorkbook, CalamineError\n"
        "try:\n"
        f"    CalamineWorkbook.from_path({str(path)!r}).get_sheet_by_index(0).to_python()\n"
        "except CalamineError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert "Cell limit exceeded" in done.stdout


def test_ods_entity_declaration_is_refused(tmp_path: Path) -> None:
    rows = '<table:table-row><table:table-cell office:value-type="string"/></table:table-row>'
    path = fx.write_ods(tmp_path / "e.ods", rows)
    with zipfile.ZipFile(path) as original:
        data = original.read("content.xml")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", b'<!DOCTYPE d [<!ENTITY a "aaaa">]>' + data)
    with pytest.raises(guard.WorkbookRefused, match="entities"):
        guard.plan(path, "ods")
