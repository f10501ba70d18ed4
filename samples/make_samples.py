"""Write the samples: promo_codes.{csv,xlsx,ods} from one table, messy.{csv,xlsx,ods} from another.

Run ``python samples/make_samples.py`` after editing a table; the three promo_codes files stay
identical in content. The xlsx is written the way Excel users type it: real date cells for the
dates, codes in text-formatted cells, the quantity as a number. The .ods files and messy.xlsx
are written by LibreOffice (``soffice``, from ``apt-get install libreoffice-calc-nogui``), as
marketing's own files are: this script writes each as flat OpenDocument XML (``.fods``) and has
LibreOffice convert it; without LibreOffice those files are left as they are. The tests read
the committed files and never need LibreOffice.

messy.{xlsx,ods} hold what LibreOffice and Google Sheets users send: a cover sheet first, title
rows above the header, header cells on two lines, number, formula, date and date-time cells,
month-name dates, Zype addresses for ids, and Excel's damage to codes and dates; messy.csv is
its Codes sheet as Google Sheets downloads it, every cell as shown.

The table is a realistic marketing sheet: all four entitlement kinds, rows without a code
(generated), one quantity row, one row whose id is all zeros (the sandbox answers 422 "not
found", so a demo run shows a ``rejected`` row) and six deliberately bad rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HEADER = [
    "Promo Code",
    "Expires",
    "Video ID",
    "Playlist ID",
    "Subscription Plan ID",
    "Pass Plan ID",
    "Qty",
    "Campaign",
    "Notes",
]

V1, V2, V3 = "5f1a2b3c4d5e6f7a8b9c0d11", "5f1a2b3c4d5e6f7a8b9c0d12", "5F1A2B3C4D5E6F7A8B9C0D13"
P1, P2 = "60aa11bb22cc33dd44ee5501", "60aa11bb22cc33dd44ee5502"
S1, S2 = "61b0c0d0e0f0a0b0c0d0e001", "61b0c0d0e0f0a0b0c0d0e002"
X1, X2 = "62c1d2e3f4a5b6c7d8e9f001", "62c1d2e3f4a5b6c7d8e9f002"
ZERO = "000000000000000000000000"


def row(
    code: str,
    expires: str,
    *,
    video: str = "",
    playlist: str = "",
    plan: str = "",
    pass_plan: str = "",
    qty: str = "",
    campaign: str = "",
    notes: str = "",
) -> list[str]:
    return [code, expires, video, playlist, plan, pass_plan, qty, campaign, notes]


ROWS: list[list[str]] = [
    row("SUMMER-2030-001", "2030-08-31", video=V1, campaign="Summer launch"),
    row("SUMMER-2030-002", "2030-08-31", video=V1, campaign="Summer launch"),
    row("SUMMER-2030-003", "2030-08-31", video=V2, campaign="Summer launch"),
    row("SUMMER-2030-004", "2030-08-31", video=V3, campaign="Summer launch", notes="upper-case id"),
    row("DOCS_FEST_01", "2030-10-15", playlist=P1, campaign="Documentary festival"),
    row("DOCS_FEST_02", "2030-10-15", playlist=P1, campaign="Documentary festival"),
    row("DOCS_FEST_03", "2030-10-15", playlist=P2, campaign="Documentary festival"),
    row("00123", "2031-01-31", plan=S1, campaign="Partner bundle", notes="leading zeros"),
    row("00124", "2031-01-31", plan=S1, campaign="Partner bundle"),
    row("NA", "2031-01-31", plan=S2, campaign="Partner bundle", notes="a code, not missing"),
    row("NULL", "2031-01-31", plan=S2, campaign="Partner bundle", notes="a code, not missing"),
    row("PASS-WEEKEND-A", "2030-12-31", pass_plan=X1, campaign="Weekend pass"),
    row("PASS-WEEKEND-B", "2030-12-31", pass_plan=X1, campaign="Weekend pass"),
    row("PASS-WEEKEND-C", "12/31/2030", pass_plan=X2, campaign="Weekend pass", notes="US date"),
    row("VIP2030GOLD", "2032-06-30", plan=S1, campaign="VIP"),
    row("VIP2030SILVER", "2032-06-30", plan=S2, campaign="VIP"),
    row("", ""),  # a blank line, as marketers leave them
    row("GIFT-ALPHA", "2030-11-30", video=V2, campaign="Holiday gifts"),
    row("GIFT-BRAVO", "2030-11-30", video=V2, campaign="Holiday gifts"),
    row("GIFT-CHARLIE", "2030-11-30", playlist=P2, campaign="Holiday gifts"),
    row("GIFT-DELTA", "11/30/2030", pass_plan=X2, campaign="Holiday gifts", notes="US date"),
    row("SCHOOL-2031-1", "2031-09-01", playlist=P1, campaign="Back to school"),
    row("SCHOOL-2031-2", "2031-09-01", playlist=P1, campaign="Back to school"),
    row("", "2030-12-31", video=V1, campaign="Influencers", notes="code generated"),
    row("", "2030-12-31", video=V1, campaign="Influencers", notes="code generated"),
    row("", "2031-03-31", playlist=P2, campaign="Influencers", notes="code generated"),
    row("", "2031-03-31", plan=S1, campaign="Influencers", notes="code generated"),
    row("", "2031-06-30", pass_plan=X1, qty="5", campaign="Street team", notes="five codes"),
    row("PRESS-KIT-01", "2030-09-30", video=V3, campaign="Press"),
    row("PRESS-KIT-02", "2030-09-30", playlist=P2, campaign="Press"),
    row("GHOST-ENTRY", "2030-12-31", video=ZERO, campaign="Press", notes="unknown video id"),
    row("LAUNCH-2030", "2030-12-31", plan=S2, campaign="Launch"),
    row("LAUNCH-2031", "2031-12-31", plan=S2, campaign="Launch"),
    # The deliberately bad rows.
    row("OLD-PROMO-2020", "2020-01-01", video=V1, campaign="Archive", notes="expired"),
    row("BOTH-KINDS", "2030-12-31", video=V1, playlist=P1, campaign="Mixed", notes="two"),
    row("SHORT-ID", "2030-12-31", video="12345", campaign="Mixed", notes="bad id"),
    row("summer-2030-001", "2030-08-31", video=V1, campaign="Summer launch", notes="duplicate"),
    row("SPRING 2030!", "2030-04-30", playlist=P1, campaign="Spring", notes="bad characters"),
    row("BAD-DATE-1", "31/31/2030", plan=S1, campaign="Mixed", notes="not a date"),
]


def _date_cell(text: str) -> dt.date | str:
    """ISO and month-first slash dates become real date cells; anything else stays text."""
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return text


def write_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")  # as Excel writes it
        writer.writerow(HEADER)
        writer.writerows(ROWS)


def write_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Promo codes"
    sheet.append(HEADER)
    for number, values in enumerate(ROWS, start=2):
        for column, text in enumerate(values, start=1):
            if not text:
                continue
            cell = sheet.cell(row=number, column=column)
            if column == 2:
                cell.value = _date_cell(text)
                if isinstance(cell.value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
            elif column == 7:
                cell.value = int(text)
            else:
                cell.value = text
                cell.number_format = "@"  # text cells: 00123 keeps its zeros
    book.save(path)


# --- LibreOffice-made workbooks ----------------------------------------------------------------

#: A cell of a flat-ODS sheet: text, a number, a date, a date-time, or a formula with the value
#: it computes (LibreOffice keeps the cached value when it converts).
Cell = str | int | float | dt.date | tuple[str, "Cell"]

VID = V1
URL = f"https://admin.zype.com/videos/{V2}/edit"
API_URL = f"https://api.zype.com/playlists/{P1}?api_key=not-a-real-key"

MESSY_COVER: list[list[Cell]] = [
    ["Instructions"],
    [],
    ["Fill in the Codes sheet. One row per code; leave the code empty to generate codes."],
    ["Dates: any way you like. Questions: marketing-ops@example.com"],
]
MESSY_HEADER: list[Cell] = ["Promo\nCode", "Expires  On", "Video ID", "Playlist  ID", "Qty", "Notes"]
#: (cells, what a careful person reads: the issue code, or "" for a valid row)
MESSY_ROWS: list[tuple[list[Cell], str]] = [
    ([12345, dt.date(2031, 12, 31), VID, "", "", "a number cell"], ""),
    (["00123", "31-Dec-2031", VID, "", "", "text with zeros"], ""),
    ([("of:=\"SPRING-\"&\"001\"", "SPRING-001"), "December 31, 2031", VID, "", "", "formula"], ""),
    (["NA", dt.datetime(2031, 12, 31, 15, 30), "", P1, "", "a date-time cell"], ""),
    (["NULL", "2031-12-31T00:00:00Z", URL, "", "", "an admin address"], ""),
    (["\u00a0NBSP-EDGES\u200b", "Dec 31 2031", "", API_URL, "", "pasted from mail"], ""),
    (["", ("of:=DATE(2031;12;31)", dt.date(2031, 12, 31)), VID, "", 5, "five codes"], ""),
    (["", "2031-12-31 00:00:00", VID, "", ("of:=2+3", 5.0), "formula quantity"], ""),
    ([], ""),
    (["SAVE\u200b10", "2031-12-31", VID, "", "", "zero-width space inside"], "invisible-character"),
    (["1.23457E+11", "2031-12-31", VID, "", "", "Excel's scientific notation"], "code-lost-digits"),
    ([dt.date(2031, 9, 2), "2031-12-31", VID, "", "", "SEP2 turned into a date"], "code-as-date"),
    (["SERIAL-DATE", 47848, VID, "", "", "a date as its day number"], "date-as-number"),
    (["NO-SUCH-DAY", "2031-02-30", VID, "", "", "impossible date"], "bad-expiration"),
    (["TWO-DIGIT-YEAR", "31-Dec-31", VID, "", "", "ambiguous year"], "bad-expiration"),
    (["OTHER-SITE", "2031-12-31", "https://example.com/videos/1", "", "", "not Zype"],
     "bad-entitlement-id"),
]  # fmt: skip


def _fods_cell(value: Cell) -> str:
    formula = ""
    if isinstance(value, tuple):
        text, value = value
        formula = f" table:formula={quoteattr(text)}"
    if isinstance(value, dt.datetime):
        return (
            f'<table:table-cell table:style-name="datetime"{formula} office:value-type="date"'
            f' office:date-value="{value.isoformat()}"><text:p>{value}</text:p></table:table-cell>'
        )
    if isinstance(value, dt.date):
        return (
            f'<table:table-cell table:style-name="date"{formula} office:value-type="date"'
            f' office:date-value="{value.isoformat()}"><text:p>{value}</text:p></table:table-cell>'
        )
    if isinstance(value, int | float):
        return (
            f'<table:table-cell{formula} office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    if not value:
        return "<table:table-cell/>"
    lines = "".join(f"<text:p>{escape(line)}</text:p>" for line in value.split("\n"))
    return f'<table:table-cell{formula} office:value-type="string">{lines}</table:table-cell>'


def _fods(sheets: dict[str, list[list[Cell]]]) -> str:
    """A flat OpenDocument spreadsheet of *sheets*, with date and date-time cell styles."""
    ns = "urn:oasis:names:tc:opendocument:xmlns"
    tables = "".join(
        f"<table:table table:name={quoteattr(name)}>"
        + "".join(
            "<table:table-row>" + "".join(_fods_cell(c) for c in row or [""]) + "</table:table-row>"
            for row in rows
        )
        + "</table:table>"
        for name, rows in sheets.items()
    )
    day = (
        '<number:year number:style="long"/><number:text>-</number:text>'
        '<number:month number:style="long"/><number:text>-</number:text>'
        '<number:day number:style="long"/>'
    )
    time = '<number:text> </number:text><number:hours number:style="long"/><number:text>:</number:text><number:minutes number:style="long"/>'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<office:document xmlns:office="{ns}:office:1.0" xmlns:table="{ns}:table:1.0"'
        f' xmlns:text="{ns}:text:1.0" xmlns:style="{ns}:style:1.0"'
        f' xmlns:number="{ns}:datastyle:1.0" xmlns:of="{ns}:of:1.2" office:version="1.2"'
        ' office:mimetype="application/vnd.oasis.opendocument.spreadsheet">'
        "<office:automatic-styles>"
        f'<number:date-style style:name="ymd">{day}</number:date-style>'
        f'<number:date-style style:name="ymdhm">{day}{time}</number:date-style>'
        '<style:style style:name="date" style:family="table-cell" style:data-style-name="ymd"/>'
        '<style:style style:name="datetime" style:family="table-cell"'
        ' style:data-style-name="ymdhm"/>'
        "</office:automatic-styles>"
        f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body>"
        "</office:document>\n"
    )


def messy_sheets() -> dict[str, list[list[Cell]]]:
    title: list[list[Cell]] = [["Spring campaign 2031 - prepared by marketing"], []]
    body = [cells for cells, _ in MESSY_ROWS]
    return {"Instructions": MESSY_COVER, "Codes": [*title, MESSY_HEADER, *body]}


#: A partner's lookup sheet whose VLOOKUPs failed: formula errors in the code column, which
#: calamine reads as empty cells (tests/sheet/data/formula_errors.xls, for the .xls reader).
ERROR_ROWS: list[list[Cell]] = [
    ["Code", "Expires", "Video ID"],
    [("of:=NA()", "#N/A"), "2031-12-31", VID],
    [("of:=1/0", "#DIV/0!"), "2031-12-31", VID],
    ["GOOD-001", "2031-12-31", VID],
]


#: Three codes, and one stray value at IV65536, the last cell of an .xls grid (a key pressed
#: after Ctrl+End): tests/sheet/data/stray_cell.xls.
STRAY_ROWS: list[list[Cell]] = [
    ["Code", "Expires", "Video ID"],
    *([f"STRAY-{n}", "2031-12-31", VID] for n in range(1, 4)),
    *([] for _ in range(65_536 - 5)),
    [*([""] * 255), "x"],
]


def promo_sheets() -> dict[str, list[list[Cell]]]:
    rows: list[list[Cell]] = [list(HEADER)]
    for values in ROWS:
        cells: list[Cell] = list(values)
        cells[1] = _date_cell(values[1])
        cells[6] = int(values[6]) if values[6] else ""
        rows.append(cells)
    return {"Promo codes": rows}


def _shown(value: Cell) -> str:
    """A cell as Google Sheets (US) writes it to CSV: as shown, dates month first."""
    if isinstance(value, tuple):
        return _shown(value[1])
    if isinstance(value, dt.datetime):
        return f"{value.month}/{value.day}/{value.year} {value:%H:%M:%S}"
    if isinstance(value, dt.date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_messy_csv(path: Path) -> None:
    """The Codes sheet of messy.xlsx as Google Sheets downloads it (File > Download > CSV)."""
    sheet = messy_sheets()["Codes"]
    width = len(MESSY_HEADER)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        for row in sheet:
            cells = [_shown(c) for c in row]
            writer.writerow(cells + [""] * (width - len(cells)))


def libreoffice(sheets: dict[str, list[list[Cell]]], target: Path) -> bool:
    """Have LibreOffice write *sheets* as *target* (.ods or .xlsx); False without LibreOffice."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{target.stem}.fods"
        source.write_text(_fods(sheets), encoding="utf-8")
        filter_name = {
            ".ods": "ods",
            ".xlsx": "xlsx:Calc MS Excel 2007 XML",
            ".xlsm": "xlsm:Calc MS Excel 2007 VBA XML",
            ".xls": "xls:MS Excel 97",
        }[target.suffix]
        subprocess.run(
            [soffice, "--headless", "--convert-to", filter_name, "--outdir", tmp, str(source)],
            check=True,
            capture_output=True,
        )
        shutil.copyfile(Path(tmp) / target.name, target)
    return True


def main() -> None:
    here = Path(__file__).resolve().parent
    write_csv(here / "promo_codes.csv")
    write_xlsx(here / "promo_codes.xlsx")
    write_messy_csv(here / "messy.csv")
    made = [
        libreoffice(promo_sheets(), here / "promo_codes.ods"),
        libreoffice(messy_sheets(), here / "messy.ods"),
        libreoffice(messy_sheets(), here / "messy.xlsx"),
        libreoffice(messy_sheets(), here / "messy.xlsm"),
        libreoffice(messy_sheets(), here / "messy.xls"),
        libreoffice({"Codes": ERROR_ROWS}, here.parent / "tests/sheet/data/formula_errors.xls"),
        libreoffice({"Codes": STRAY_ROWS}, here.parent / "tests/sheet/data/stray_cell.xls"),
    ]
    if not all(made):
        print("LibreOffice (soffice) not found: the .ods and messy workbook samples were not rewritten")


if __name__ == "__main__":
    main()
