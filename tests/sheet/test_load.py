"""The loader: real files in tmp_path, every cell as text, one clear error per bad file."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from importer.config import InputConfig
from importer.errors import InputError
from importer.rules.validate import validate
from importer.sheet.load import CODE_ONLY, Sheet, load, normalise_header
from importer.sheet.pasted import strip

VID = "5f1a2b3c4d5e6f7a8b9c0d11"
CONFIG = InputConfig()
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


HEADER: list[object] = ["Code", "Expires", "Video"]
ROW_A: list[object] = ["A", "2030-01-01", VID]
ROW_B: list[object] = ["B", "2030-01-01", VID]


def write(tmp_path: Path, text: str, *, name: str = "promo.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path: Path, sheets: dict[str, list[list[object]]], name: str = "p.xlsx") -> Path:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = tmp_path / name
    book.save(path)
    return path


def records(sheet: Sheet) -> list[dict[str, object]]:
    return sheet.frame.to_dict("records")


# --- CSV encodings and delimiters -----------------------------------------------------------


def test_semicolon_cp1252_with_accents(tmp_path: Path) -> None:
    text = (
        "Promo Code;Expires;Video ID;Campagne\r\n"
        f"ÉTÉ-2030;31/12/2030;{VID};Été à Paris\r\n"
        f"NOËL;2030-12-24;{VID};Noël\r\n"
    )
    sheet = load(write(tmp_path, text, encoding="cp1252"), CONFIG)
    assert records(sheet) == [
        {"code": "ÉTÉ-2030", "expiration_date": "31/12/2030", "video_id": VID, "row": 2},
        {"code": "NOËL", "expiration_date": "2030-12-24", "video_id": VID, "row": 3},
    ]
    assert sheet.warnings == (f"{tmp_path / 'promo.csv'}: ignoring unknown columns: Campagne",)


def test_utf8_bom_does_not_break_the_first_header(tmp_path: Path) -> None:
    text = f"\ufeffPromo Code,Expires,Video ID\nCAFÉ,2030-01-01,{VID}\n"
    sheet = load(write(tmp_path, text), CONFIG)
    assert records(sheet) == [
        {"code": "CAFÉ", "expiration_date": "2030-01-01", "video_id": VID, "row": 2}
    ]


def test_tab_separated(tmp_path: Path) -> None:
    text = f"code\texpiration_date\tplaylist_id\nA,B\t2030-01-01\t{VID}\n"
    assert records(load(write(tmp_path, text), CONFIG)) == [
        {"code": "A,B", "expiration_date": "2030-01-01", "playlist_id": VID, "row": 2}
    ]


def test_excel_unicode_text_is_utf16_tabs(tmp_path: Path) -> None:
    text = f"Promo Code\tExpires\tVideo ID\r\nÉTÉ\t2030-01-01\t{VID}\r\n"
    sheet = load(write(tmp_path, text, name="promo.txt", encoding="utf-16"), CONFIG)
    assert records(sheet) == [
        {"code": "ÉTÉ", "expiration_date": "2030-01-01", "video_id": VID, "row": 2}
    ]


def test_excel_sep_line_sets_the_delimiter_and_takes_no_row(tmp_path: Path) -> None:
    text = f"sep=;\r\ncode;expiration_date;video_id;Notes\r\nA,1;2030-01-01;{VID};x,y\r\n"
    sheet = load(write(tmp_path, text), CONFIG)
    assert records(sheet) == [
        {"code": "A,1", "expiration_date": "2030-01-01", "video_id": VID, "row": 2}
    ]


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("code,expiration_date,video_id", ","),
        ("code;expiration_date;video_id", ";"),
        ("code\texpiration_date\tvideo_id", "\t"),
        # Quoted headers holding another delimiter do not fool the sniffer.
        ('"Promo; Code",Expires,Video ID', ","),
        ('"Promo, Code";Expires;Video ID', ";"),
    ],
)
def test_delimiter_sniffed_from_header(tmp_path: Path, header: str, delimiter: str) -> None:
    line = delimiter.join(["X1", "2030-01-01", VID])
    sheet = load(write(tmp_path, f"{header}\n{line}\n"), CONFIG)
    assert records(sheet) == [
        {"code": "X1", "expiration_date": "2030-01-01", "video_id": VID, "row": 2}
    ]


@pytest.mark.parametrize(
    "code", ["00123", "NA", "NULL", "N/A", "nan", "None", "TRUE", "false", "#N/A", "1.2E+11"]
)
def test_cells_stay_text(tmp_path: Path, code: str) -> None:
    sheet = load(
        write(tmp_path, f"code,expiration_date,video_id\n{code},2030-01-01,{VID}\n"), CONFIG
    )
    assert sheet.frame["code"].tolist() == [code]


def test_blank_lines_keep_their_numbers_and_cells_are_trimmed(tmp_path: Path) -> None:
    text = (
        "\n"  # a blank line above the header moves the header to row 2
        "code,expiration_date,video_id,Notes\n"
        f"  A1  , 2030-01-01 ,{VID},\n"
        ",,,\n"
        "\n"
        "   ,  ,  ,\n"
        f"A2,2030-01-02,{VID},\n"
        ",,,only a note\n"
    )
    sheet = load(write(tmp_path, text), CONFIG)
    assert records(sheet) == [
        {"code": "A1", "expiration_date": "2030-01-01", "video_id": VID, "row": 3},
        {"code": "A2", "expiration_date": "2030-01-02", "video_id": VID, "row": 7},
        # Text in an ignored column is not a blank line: it still gets a result line.
        {"code": "", "expiration_date": "", "video_id": "", "row": 8},
    ]


def test_title_rows_above_the_header_are_passed_over(tmp_path: Path) -> None:
    text = (
        "Spring campaign 2031\n"
        "\n"
        "prepared by marketing,,,\n"
        "Promo Code,Expires,Video ID,Notes\n"
        f"A1,2031-03-31,{VID},first\n"
    )
    path = write(tmp_path, text)
    sheet = load(path, CONFIG)
    assert records(sheet) == [
        {"code": "A1", "expiration_date": "2031-03-31", "video_id": VID, "row": 5},
    ]
    assert sheet.warnings == (
        f"{path}: the header is row 4; ignoring the 2 row(s) above it",
        f"{path}: ignoring unknown columns: Notes",
    )


def test_a_type_and_id_pair_alone_names_the_entitlement(tmp_path: Path) -> None:
    # The contract's alternative to the four id columns; it was refused as "missing column".
    path = write(tmp_path, f"Code,Expires,Type,Content ID\nA1,2031-03-31,Pass plan,{VID}\n")
    assert records(load(path, CONFIG)) == [
        {
            "code": "A1",
            "expiration_date": "2031-03-31",
            "entitlement_type": "Pass plan",
            "entitlement_id": VID,
            "row": 2,
        }
    ]


def test_without_a_recognisable_header_the_first_row_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, f"Spring campaign 2031\nA1,2031-03-31,{VID}\n")
    with pytest.raises(InputError, match="line 2 has 3 cells but the header has 1"):
        load(path, CONFIG)


def test_quoted_newline_is_one_spreadsheet_row(tmp_path: Path) -> None:
    text = (
        "code,expiration_date,video_id,Notes\n"
        f'A1,2030-01-01,{VID},"two\nlines"\n'
        f"A2,2030-01-01,{VID},\n"
    )
    assert load(write(tmp_path, text), CONFIG).frame["row"].tolist() == [2, 3]


def test_header_only_is_zero_rows(tmp_path: Path) -> None:
    sheet = load(write(tmp_path, "code,expiration_date,video_id\r\n"), CONFIG)
    assert len(sheet.frame) == 0
    assert "row" in sheet.frame


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("Promo Code", "code"),
        ("PROMO-CODE", "code"),
        ("  coupon_code ", "code"),
        ("Expires On", "expiration_date"),
        ("Expiry", "expiration_date"),
        ("expiration-date", "expiration_date"),
        ("Video ID", "video_id"),
        ("Subscription Plan ID", "plan_id"),
        ("Pass Plan", "pass_plan_id"),
        ("Entitlement Type", "entitlement_type"),
        ("Content ID", "entitlement_id"),
        ("Qty", "quantity"),
        ("Number of Codes", "quantity"),
    ],
)
def test_headers_match_loosely(tmp_path: Path, header: str, column: str) -> None:
    base = {"expiration_date": "Expires", "video_id": "Video"}
    base[column] = header
    if column == "entitlement_id":
        base["entitlement_type"] = "Type"
    names = ",".join(f'"{h}"' for h in base.values())
    cells = ",".join("x" for _ in base)
    sheet = load(write(tmp_path, f"{names}\n{cells}\n"), CONFIG)
    assert column in sheet.frame.columns


def test_sheet_option_on_a_csv_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, f"code,expiration_date,video_id\nA,2030-01-01,{VID}\n")
    sheet = load(path, InputConfig(sheet="Codes"))
    assert sheet.warnings == (f"{path}: a CSV file has no sheets; ignoring sheet 'Codes'",)


def test_aliases_from_config(tmp_path: Path) -> None:
    config = InputConfig(aliases={**CONFIG.aliases, "code": ("Gutschein",)})
    sheet = load(write(tmp_path, f"Gutschein,Expires,Video\nX,2030-01-01,{VID}\n"), config)
    assert sheet.frame["code"].tolist() == ["X"]


def test_normalise_header() -> None:
    assert normalise_header(" Promo-Code (new) ") == "promocodenew"


def test_unknown_columns_one_warning(tmp_path: Path) -> None:
    text = f"Code,Notes,Expires,Owner,Video ID,,Notes\nX,n,2030-01-01,o,{VID},,\n"
    sheet = load(write(tmp_path, text), CONFIG)
    assert sheet.warnings == (f"{tmp_path / 'promo.csv'}: ignoring unknown columns: Notes, Owner",)
    assert list(sheet.frame.columns) == ["code", "expiration_date", "video_id", "row"]


def test_unnamed_column_with_data_is_reported(tmp_path: Path) -> None:
    sheet = load(write(tmp_path, f"Code,Expires,Video ID,\nX,2030-01-01,{VID},stray\n"), CONFIG)
    assert sheet.warnings[0].endswith("ignoring unknown columns: (unnamed column 4)")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "Code,Video ID",
            "missing column 'expiration_date' (accepted headers: expiration_date, Expires,",
        ),
        ("Code,Expires,Notes", "no entitlement column"),
        ("Code,Expires,Type", "missing column 'entitlement_id' (accepted headers:"),
        ("Code,Expires,Content ID", "missing column 'entitlement_type'"),
        ("Promo Code,Code,Expires,Video", "columns 'Promo Code' and 'Code' both mean 'code'"),
        ("Code,Expires,Video,Video ID", "columns 'Video' and 'Video ID' both mean 'video_id'"),
    ],
)
def test_header_errors(tmp_path: Path, header: str, message: str) -> None:
    path = write(tmp_path, header + "\n")
    with pytest.raises(InputError) as caught:
        load(path, CONFIG)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


# --- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("promo.csv", b"", "the file is empty"),
        ("promo.csv", b"  \r\n\n", "the file is empty"),
        ("promo.csv", b",,,\n;;\n", "no header row"),
        (
            "promo.csv",
            b"\x00\x01\x02binary\xff\x00",
            "not a spreadsheet (binary file saved as .csv)",
        ),
        ("promo.csv", b"PK\x03\x04rest of a zip", "this zip file is damaged"),
        ("promo.csv", b"code,expires,video\n\x81\x8d\x8f\x90\x9d\n", "not text in UTF-8"),
        ("promo.csv", b'code,expires,video\n"open,2030-01-01,x\n', "quoted cell is never closed"),
        ("promo.csv", b"code,expires,video\nA,2030-01-01,x\nB,2030,x,extra\n", "line 3 has 4"),
        ("promo.xlsx", b"this is not a zip file", "missing column"),  # text: read as CSV
        ("promo.xlsx", b"", "the file is empty"),
        ("promo.xls", b"old excel", "missing column"),  # text named .xls: read as CSV
        ("promo.json", b"{}", "unsupported file type '.json'"),
        ("promo", b"code", "unsupported file without an extension"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load(path, CONFIG)
    text = str(caught.value)
    assert text.startswith(str(path))
    assert message in text
    assert "\n" not in text


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: no such file"):
        load(tmp_path / "nope.csv", CONFIG)
    with pytest.raises(InputError, match=r"nope\.xlsx: no such file"):
        load(tmp_path / "nope.xlsx", CONFIG)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        load(tmp_path / "dir.csv", CONFIG)


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(
        InputError, match=r"fake\.xlsx: this is a zip archive saved as \.xlsx, not a spreadsheet"
    ):
        load(path, CONFIG)


# --- xlsx -----------------------------------------------------------------------------------


def test_xlsx_cells_become_text(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        {
            "Codes": [
                ["Promo Code", "Expires", "Video ID", "Qty"],
                ["00123", dt.date(2030, 12, 31), VID, None],
                [123456789012, dt.datetime(2031, 1, 2, 15, 30), VID, 5],
                [123456789012.0, "2031-02-03", VID, 5.0],
                [True, dt.datetime(2031, 1, 2), VID, 2.5],
                ["  NA  ", None, None, None],
            ]
        },
    )
    assert records(load(path, CONFIG)) == [
        {
            "code": "00123",
            "expiration_date": "2030-12-31",
            "video_id": VID,
            "quantity": "",
            "row": 2,
        },
        {
            "code": "123456789012",
            "expiration_date": "2031-01-02",
            "video_id": VID,
            "quantity": "5",
            "row": 3,
        },
        {
            "code": "123456789012",
            "expiration_date": "2031-02-03",
            "video_id": VID,
            "quantity": "5",
            "row": 4,
        },
        {
            "code": "TRUE",
            "expiration_date": "2031-01-02",
            "video_id": VID,
            "quantity": "2.5",
            "row": 5,
        },
        {"code": "NA", "expiration_date": "", "video_id": "", "quantity": "", "row": 6},
    ]


def test_xlsx_blank_rows_keep_numbers(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet["B3"], sheet["C3"], sheet["D3"] = "Code", "Expires", "Video"
    sheet["B4"], sheet["C4"], sheet["D4"] = "A", "2030-01-01", VID
    sheet["B7"], sheet["C7"], sheet["D7"] = "B", "2030-01-01", VID
    sheet["C9"] = ""
    path = tmp_path / "gaps.xlsx"
    book.save(path)
    frame = load(path, CONFIG).frame
    assert frame["row"].tolist() == [4, 7]
    assert frame["code"].tolist() == ["A", "B"]


def test_xlsx_title_rows_above_the_header_are_passed_over(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        {
            "Codes": [
                ["Spring campaign 2031"],
                [],
                ["Code", "Expires", "Video"],
                ["A", "2031-03-31", VID],
            ]
        },
    )
    sheet = load(path, CONFIG)
    assert sheet.frame["row"].tolist() == [4]
    assert sheet.warnings == (
        f"{path}, sheet 'Codes': the header is row 3; ignoring the 1 row(s) above it",
    )


def test_a_row_of_invisible_characters_above_the_header_is_blank(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, {"Codes": [["\u00a0", "\u200b"], HEADER, ROW_A]})
    sheet = load(path, CONFIG)
    assert sheet.frame["row"].tolist() == [3]
    assert sheet.warnings == ()


@pytest.mark.parametrize(
    ("wanted", "code"), [(None, "FIRST"), ("Second", "SECOND"), (" second ", "SECOND")]
)
def test_xlsx_sheet_by_name(tmp_path: Path, wanted: str | None, code: str) -> None:
    path = write_xlsx(
        tmp_path,
        {
            "First": [["Code", "Expires", "Video"], ["FIRST", "2030-01-01", VID]],
            "Second": [["Code", "Expires", "Video"], ["SECOND", "2030-01-01", VID]],
        },
    )
    sheet = load(path, InputConfig(sheet=wanted))
    assert sheet.frame["code"].tolist() == [code]


def test_xlsx_missing_sheet_names_the_sheets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, {"Codes": [["Code"]], "Notes": [["x"]]})
    with pytest.raises(InputError) as caught:
        load(path, InputConfig(sheet="Promo"))
    assert str(caught.value) == f"{path}: no sheet named 'Promo' (sheets: 'Codes', 'Notes')"


def test_xlsx_empty_sheet_and_missing_column(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, {"Empty": [], "Bad": [["Code", "Video"], ["A", VID]]})
    with pytest.raises(InputError, match="sheet 'Empty': the sheet is empty"):
        load(path, InputConfig(sheet="Empty"))
    with pytest.raises(InputError, match="sheet 'Bad': missing column 'expiration_date'"):
        load(path, InputConfig(sheet="Bad"))
    # With no --sheet, the sheet whose first row names two columns is the one meant.
    with pytest.raises(InputError, match="sheet 'Bad': missing column 'expiration_date'"):
        load(path, CONFIG)


@pytest.mark.parametrize("name", ["promo_codes.xlsx", "promo_codes.ods"])
def test_samples_csv_and_workbooks_hold_the_same_rows(name: str) -> None:
    csv_sheet = load(SAMPLES / "promo_codes.csv", CONFIG)
    book_sheet = load(SAMPLES / name, CONFIG)
    # Dates differ only in spelling (workbooks have real date cells); the validator equates them.
    keep = [c for c in csv_sheet.frame.columns if c != "expiration_date"]
    assert records(Sheet("", csv_sheet.frame[keep])) == records(Sheet("", book_sheet.frame[keep]))
    assert len(csv_sheet.frame) >= 35
    today = dt.date(2026, 6, 15)
    assert validate(csv_sheet, CONFIG, today) == validate(book_sheet, CONFIG, today)


# --- workbooks as LibreOffice writes them ---------------------------------------------------


def _messy_rows() -> list[tuple[list[object], str]]:
    """samples/make_samples.py's messy rows, each with the issue a careful person gives it."""
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows: list[tuple[list[object], str]] = module.MESSY_ROWS
    return rows


@pytest.mark.parametrize(
    "name", ["messy.xlsx", "messy.xlsm", "messy.xls", "messy.ods", "messy.csv"]
)
def test_messy_sheets_read_as_a_person_reads_them(name: str) -> None:
    """LibreOffice's xlsx and ods, and Google Sheets' CSV of the same sheet: every row gets the
    issue samples/make_samples.py gives it beside its cells, or none."""
    path = SAMPLES / name
    sheet = load(path, CONFIG)
    where = str(path) if name.endswith(".csv") else f"{path}, sheet 'Codes'"
    cover = () if name.endswith(".csv") else (
        f"{path}: the first sheet 'Instructions' has no header; reading sheet 'Codes'",
    )  # fmt: skip
    assert sheet.warnings == (
        *cover,
        f"{where}: the header is row 3; ignoring the 1 row(s) above it",
        f"{where}: ignoring unknown columns: Notes",
        f"{where}: column 'Video ID' holds Zype addresses; read as the id in each (row 8)",
        f"{where}: column 'Playlist  ID' holds Zype addresses; read as the id in each (row 9)",
    )
    frame = sheet.frame
    assert frame["code"].tolist()[:6] == [
        "12345",
        "00123",
        "SPRING-001",
        "NA",
        "NULL",
        "NBSP-EDGES",
    ]
    assert frame["quantity"].tolist()[6:8] == ["5", "5"]
    assert frame.loc[4, "video_id"] == "5f1a2b3c4d5e6f7a8b9c0d12"
    assert frame.loc[5, "playlist_id"] == "60aa11bb22cc33dd44ee5501"

    checked = validate(sheet, CONFIG, dt.date(2026, 6, 15))
    expected = [issue for cells, issue in _messy_rows() if cells]
    rows = [r for r, (cells, _) in enumerate(_messy_rows(), start=4) if cells]
    issues = {i.row: i.code for i in checked.issues}
    assert [issues.get(r, "") for r in rows] == expected
    assert {r.expiration_date for r in checked.records} == {"2031-12-31"}
    assert len(checked.records) == 6 + 5 + 5


@pytest.mark.parametrize("name", ["messy.xlsx", "messy.xlsm", "messy.xls", "messy.ods"])
def test_workbook_cells_as_they_show(name: str) -> None:
    frame = load(SAMPLES / name, CONFIG).frame
    # A date cell, text dates as written, a date-time cell's date, a formula's computed date.
    assert frame["expiration_date"].tolist()[:7] == [
        "2031-12-31", "31-Dec-2031", "December 31, 2031", "2031-12-31", "2031-12-31T00:00:00Z",
        "Dec 31 2031", "2031-12-31",
    ]  # fmt: skip


def write_hidden(tmp_path: Path) -> Path:
    book = Workbook()
    cover = book.active
    cover.title = "Cover"
    cover.append(["How to fill this in"])
    old = book.create_sheet("Old codes")
    old.append(["Code", "Expires", "Video"])
    old.append(["OLD", "2030-01-01", VID])
    old.sheet_state = "hidden"
    new = book.create_sheet("Codes")
    new.append(["Code", "Expires", "Video"])
    new.append(["NEW", "2030-01-01", VID])
    path = tmp_path / "hidden.xlsx"
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("sheets", "wanted", "codes", "warning"),
    [
        # The first sheet has a header: read, even when others have one too.
        ({"Codes": [HEADER, ROW_A], "More": [HEADER, ROW_B]}, None, ["A"], ""),
        # A cover sheet first: the one sheet with a header is read, and named.
        ({"Instructions": [["Read me"], ["Then fill in Codes"]], "Codes": [HEADER, ROW_A]},
         None, ["A"], "the first sheet 'Instructions' has no header; reading sheet 'Codes'"),
        ({"Cover": [], "Notes": [["x", "y"]], "Codes": [["title"], HEADER, ROW_A]},
         None, ["A"], "the first sheet 'Cover' has no header; reading sheet 'Codes'"),
        # --sheet always wins.
        ({"Instructions": [["Read me"]], "Codes": [HEADER, ROW_A], "B": [HEADER, ROW_B]},
         "B", ["B"], ""),
    ],
)  # fmt: skip
def test_workbook_sheet_with_the_header_is_picked(
    tmp_path: Path,
    sheets: dict[str, list[list[object]]],
    wanted: str | None,
    codes: list[str],
    warning: str,
) -> None:
    path = write_xlsx(tmp_path, sheets)
    sheet = load(path, InputConfig(sheet=wanted))
    assert sheet.frame["code"].tolist() == codes
    assert [w for w in sheet.warnings if "first sheet" in w] == (
        [f"{path}: {warning}"] if warning else []
    )


def test_workbook_with_several_candidate_sheets_asks_for_one(tmp_path: Path) -> None:
    body = [HEADER, ["A", "2030-01-01", VID]]
    path = write_xlsx(tmp_path, {"Read me": [["hello"]], "North": body, "South": body})
    with pytest.raises(InputError) as caught:
        load(path, CONFIG)
    assert str(caught.value) == (
        f"{path}: the first sheet 'Read me' has no header and several sheets have one"
        " ('North', 'South'); choose one with --sheet"
    )


def test_hidden_sheets_are_never_picked_but_can_be_named(tmp_path: Path) -> None:
    path = write_hidden(tmp_path)
    assert load(path, CONFIG).frame["code"].tolist() == ["NEW"]
    assert load(path, InputConfig(sheet="Old codes")).frame["code"].tolist() == ["OLD"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04 a broken zip", "this zip file is damaged"),
    ],
)
def test_bad_ods(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "promo.ods"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load(path, CONFIG)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


# --- text as pasted -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("\u00a0SAVE10\u00a0", "SAVE10"),
        ("\u200bSAVE10\u200b", "SAVE10"),
        ("\ufeffSAVE10", "SAVE10"),
        ("SAVE10\u202f\u2060", "SAVE10"),
        ("\u3000SAVE10 \t", "SAVE10"),
        ("SAVE\u200b10", "SAVE\u200b10"),  # inside: kept, for the validator to show where
    ],
)
def test_invisible_characters_at_the_edges_are_trimmed(
    tmp_path: Path, cell: str, expected: str
) -> None:
    path = write(tmp_path, f'code,expiration_date,video_id\n"{cell}",2030-01-01,\u00a0{VID}\n')
    frame = load(path, CONFIG).frame
    assert (frame.loc[0, "code"], frame.loc[0, "video_id"]) == (expected, VID)


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("Promo\nCode", "code"),
        ("Expires  On", "expiration_date"),
        ("\u00a0Video\u00a0ID", "video_id"),
    ],
)
def test_headers_with_line_breaks_and_odd_spaces(tmp_path: Path, header: str, column: str) -> None:
    names = {"code": "Code", "expiration_date": "Expires", "video_id": "Video", column: header}
    path = write_xlsx(tmp_path, {"Codes": [list(names.values()), ["A", "2030-01-01", VID]]})
    assert records(load(path, CONFIG)) == [
        {"code": "A", "expiration_date": "2030-01-01", "video_id": VID, "row": 2}
    ]


@pytest.mark.parametrize(
    ("above", "row"),
    [("", 2), ("Title\n", 3), ('Title\n"a note\non two lines",,\n', 4), ("\n\n", 4)],
)
def test_csv_cells_on_two_lines_are_one_row(tmp_path: Path, above: str, row: int) -> None:
    path = write(tmp_path, f'{above}"Promo\nCode","Expires\r\nOn",Video\nA,2030-01-01,{VID}\n')
    assert records(load(path, CONFIG)) == [
        {"code": "A", "expiration_date": "2030-01-01", "video_id": VID, "row": row}
    ]


def test_an_address_of_another_kind_is_left_for_the_validator(tmp_path: Path) -> None:
    playlist = f"https://admin.zype.com/playlists/{VID}/edit"
    path = write(tmp_path, f"Code,Expires,Video ID,Playlist ID\nA,2030-01-01,{playlist},\n")
    sheet = load(path, CONFIG)
    assert sheet.frame["video_id"].tolist() == [playlist]
    assert sheet.warnings == ()


def test_zype_addresses_are_read_as_their_id_with_a_warning(tmp_path: Path) -> None:
    other = "60aa11bb22cc33dd44ee5501"
    text = (
        "Code,Expires,Type,Content ID\n"
        f"A,2030-01-01,video,https://admin.zype.com/videos/{VID.upper()}/edit\n"
        f"B,2030-01-01,playlist,https://api.zype.com/playlists/{other}.json?api_key=SECRET\n"
        f"C,2030-01-01,video,{VID}\n"
        "D,2030-01-01,video,https://example.com/videos/1\n"
    )
    path = write(tmp_path, text)
    sheet = load(path, CONFIG)
    assert sheet.frame["entitlement_id"].tolist() == [
        VID, other, VID, "https://example.com/videos/1"
    ]  # fmt: skip
    assert sheet.warnings == (
        f"{path}: column 'Content ID' holds Zype addresses; read as the id in each (rows 2, 3)",
    )
    assert "SECRET" not in " ".join(sheet.warnings)


# --- properties -----------------------------------------------------------------------------

_CELL = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
).filter(lambda s: s == strip(s) and s != "")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cells=st.lists(st.tuples(_CELL, _CELL, _CELL), min_size=1, max_size=5))
def test_any_text_cell_survives_csv(tmp_path: Path, cells: list[tuple[str, str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["code", "expiration_date", "video_id"])
    writer.writerows(cells)
    path = write(tmp_path, buffer.getvalue())
    frame = load(path, CONFIG).frame
    columns = (frame["code"], frame["expiration_date"], frame["video_id"])
    assert list(zip(*columns, strict=True)) == cells
    assert frame["row"].tolist() == list(range(2, 2 + len(cells)))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.sampled_from(
        [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"sep=;\n", b"\n\r\n", b"PK\x03\x04"]
    ),
    data=st.binary(max_size=400),
    suffix=st.sampled_from([".csv", ".xlsx", ".ods"]),
)
def test_random_bytes_never_crash(tmp_path: Path, start: bytes, data: bytes, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(start + data)
    try:
        sheet = load(path, CONFIG)
    except InputError as exc:
        message = str(exc)
    else:
        assert isinstance(sheet, Sheet)
        return
    assert message.startswith(str(path))
    assert "\n" not in message


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.text(st.sampled_from('ab,;\t"\r\n 1'), max_size=60))
def test_random_csv_text_never_crashes(tmp_path: Path, body: str) -> None:
    path = write(tmp_path, "code,expiration_date,video_id\n" + body)
    try:
        sheet = load(path, CONFIG)
    except InputError as exc:
        message = str(exc)
    else:
        checked = validate(sheet, CONFIG, dt.date(2026, 1, 1))
        assert checked.rows == len(sheet.frame)
        return
    assert message.startswith(str(path))


# -- a list of codes (revoke): the code column alone --------------------------------------------


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("Code\nAAA1\nBBB2\n", ["AAA1", "BBB2"]),
        ("Promo Code\n AAA1 \n\nBBB2\n", ["AAA1", "BBB2"]),  # trimmed; blank lines dropped
        # an old results file: its code column is read, everything else ignored
        ("row,status,code,id,error\n2,created,AAA1,x,\n3,invalid,,,no date\n", ["AAA1", ""]),
        # a title above the header is passed over, as for a sheet of codes to create
        ("Leaked on 2031-01-02\nCoupon\n00123\nNA\n", ["00123", "NA"]),
        # a sheet of codes to create is a list of codes too
        ("code,expiration_date,video_id\nAAA1,2031-01-01,x\n", ["AAA1"]),
    ],
)
def test_a_list_of_codes_needs_only_its_code_column(
    tmp_path: Path, text: str, codes: list[str]
) -> None:
    sheet = load(write(tmp_path, text), CONFIG, columns=CODE_ONLY)
    assert list(sheet.frame.columns) == ["code", "row"]
    assert sheet.frame["code"].tolist() == codes


def test_a_list_of_codes_from_a_workbook(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, {"Leaked": [["Redemption Code", "Where"], [12345, "web"], ["X-1"]]})
    sheet = load(path, CONFIG, columns=CODE_ONLY)
    assert sheet.frame["code"].tolist() == ["12345", "X-1"]
    assert sheet.frame["row"].tolist() == [2, 3]
    assert any("ignoring unknown columns: Where" in w for w in sheet.warnings)


def test_a_list_without_a_code_column_is_one_line_naming_the_accepted_headers(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        InputError, match=r"missing column 'code' \(accepted headers: Code, Promo Code, "
    ):
        load(write(tmp_path, "Expires,Video ID\n2031-01-01,x\n"), CONFIG, columns=CODE_ONLY)
