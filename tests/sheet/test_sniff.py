"""sniff.sniff and sniff.decide on files made here: kinds from content, messages for misnamed
ones."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import pytest

from importer.sheet.sniff import Kind, NotASpreadsheet, decide, sniff
from tests.sheet import hostile as fx


def xlsx(path: Path, macro: bool = False) -> Path:
    return fx.write_xlsx(path, fx.sheet_xml([fx.HEADER, *fx.ROWS]), macro=macro)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def ods(path: Path, mime: bytes = b"application/vnd.oasis.opendocument.spreadsheet") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", mime)
        archive.writestr("content.xml", "<office:document-content/>")
    return path


def zip_with(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, "x")
    return path


def test_workbook_kinds(tmp_path: Path) -> None:
    assert sniff(xlsx(tmp_path / "a.xlsx")) is Kind.XLSX
    assert sniff(xlsx(tmp_path / "a.xlsm", macro=True)) is Kind.XLSM
    assert sniff(fx.write_xlsb(tmp_path / "a.xlsb", fx.xlsb_row(0))) is Kind.XLSB
    assert sniff(ods(tmp_path / "a.ods")) is Kind.ODS
    assert sniff(fx.write_ole(tmp_path / "a.xls", "Workbook")) is Kind.XLS
    assert sniff(fx.write_ole(tmp_path / "b.xls", "Book")) is Kind.XLS  # Excel 5


def test_containers_that_are_not_workbooks(tmp_path: Path) -> None:
    assert sniff(fx.write_ole(tmp_path / "p.xlsx", "EncryptedPackage")) is Kind.ENCRYPTED
    assert sniff(fx.write_ole(tmp_path / "w.xls", "WordDocument")) is Kind.WORD
    assert sniff(fx.write_ole(tmp_path / "o.xls", "Something")) is Kind.OLE
    assert sniff(ods(tmp_path / "t.ods", b"application/vnd.oasis.opendocument.text")) is (
        Kind.OTHER_ODF
    )
    assert sniff(zip_with(tmp_path / "d.xlsx", "word/document.xml")) is Kind.WORD
    assert sniff(zip_with(tmp_path / "z.xlsx", "photos/1.jpg")) is Kind.ZIP
    whole = xlsx(tmp_path / "whole.xlsx").read_bytes()
    assert sniff(write(tmp_path / "cut.xlsx", whole[: len(whole) // 2])) is Kind.DAMAGED_ZIP


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body><table><tr><td>Code</td></tr></table>",
        b"\xef\xbb\xbf\r\n  <html xmlns:o='urn:schemas-microsoft-com:office:office'>",
        b"   <table border=1><tr><th>Code</th></tr></table>",
        b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">',
        codecs.BOM_UTF16_LE + "<html><table>".encode("utf-16-le"),
    ],
)
def test_web_pages(tmp_path: Path, data: bytes) -> None:
    assert sniff(write(tmp_path / "report.xls", data)) is Kind.HTML


def test_other_kinds(tmp_path: Path) -> None:
    assert sniff(write(tmp_path / "a.xlsx", b"%PDF-1.7\n...")) is Kind.PDF
    assert sniff(write(tmp_path / "a.png", b"\x89PNG\r\n\x1a\n\x00\x00")) is Kind.IMAGE
    assert sniff(write(tmp_path / "a.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF")) is Kind.IMAGE
    assert sniff(write(tmp_path / "a.gif", b"GIF89a\x01\x00")) is Kind.IMAGE
    assert sniff(write(tmp_path / "a.bin", bytes(range(256)) * 4)) is Kind.BINARY
    assert sniff(write(tmp_path / "e.csv", b"  \r\n")) is Kind.EMPTY
    excel_2003 = b'<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n<Workbook>'
    assert sniff(write(tmp_path / "x.xls", excel_2003)) is Kind.XML_2003


@pytest.mark.parametrize(
    "data",
    [
        b"Promo Code,Expires\r\nA,2030-01-01\r\n",
        b"\xef\xbb\xbfPromo Code;Expires\n",
        codecs.BOM_UTF16_LE + "Promo Code\tExpires\r\n".encode("utf-16-le"),
        "Código,Expira\n".encode("cp1252"),
        b"sep=;\nPromo Code;Expires\n",
    ],
)
def test_csv_text(tmp_path: Path, data: bytes) -> None:
    assert sniff(write(tmp_path / "c.csv", data)) is Kind.CSV


# --- decide -------------------------------------------------------------------------------------


def test_matching_names_read_silently(tmp_path: Path) -> None:
    assert decide(xlsx(tmp_path / "a.xlsx")).warning is None
    assert decide(xlsx(tmp_path / "a.xlsm")).warning is None  # the same format
    assert decide(write(tmp_path / "c.txt", b"a,b\n")).reader == "csv"


def test_a_workbook_under_another_name_is_read_as_what_it_is(tmp_path: Path) -> None:
    made = decide(fx.write_ole(tmp_path / "old.xlsx", "Workbook"))
    assert (made.reader, made.kind) == ("workbook", Kind.XLS)
    assert made.warning == (
        "this file is an Excel 97-2003 workbook (.xls) but is named with '.xlsx';"
        " reading it as .xls"
    )
    made = decide(xlsx(tmp_path / "codes.csv"))
    assert (made.reader, made.kind) == ("workbook", Kind.XLSX)
    made = decide(xlsx(tmp_path / "codes"))
    assert made.warning is not None
    assert "no extension" in made.warning


def test_csv_text_named_as_a_workbook_is_read_as_csv(tmp_path: Path) -> None:
    made = decide(write(tmp_path / "codes.xlsx", b"Promo Code,Expires\n"))
    assert (made.reader, made.kind) == ("csv", Kind.CSV)
    assert (
        made.warning == "this file is a CSV text file but is named with '.xlsx'; reading it as CSV"
    )


def test_text_under_an_unknown_name_keeps_the_old_refusal(tmp_path: Path) -> None:
    with pytest.raises(NotASpreadsheet, match=r"unsupported file type '\.json'"):
        decide(write(tmp_path / "codes.json", b'{"a": 1}'))


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "report.xls",
            b"<html><table></table></html>",
            (
                "this is a web page (HTML) saved as .xls, not a workbook: open it in Excel (or"
                " LibreOffice) and save it as .xlsx, or export the sheet as .csv"
            ),
        ),
        ("scan.xlsx", b"%PDF-1.4", "this is a PDF document saved as .xlsx, not a spreadsheet"),
        (
            "codes.xlsx",
            b"\x89PNG\r\n\x1a\n",
            "this is a PNG image saved as .xlsx, not a spreadsheet",
        ),
        ("codes.csv", b"", "the file is empty"),
    ],
)
def test_refusals_are_one_line(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    with pytest.raises(NotASpreadsheet) as caught:
        decide(write(tmp_path / name, data))
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_password_protected(tmp_path: Path) -> None:
    with pytest.raises(NotASpreadsheet, match=r"^this workbook is password-protected: open it"):
        decide(fx.write_ole(tmp_path / "secret.xlsx", "EncryptedPackage"))


def test_damaged_zip(tmp_path: Path) -> None:
    whole = xlsx(tmp_path / "whole.xlsx").read_bytes()
    with pytest.raises(NotASpreadsheet, match="zip file is damaged"):
        decide(write(tmp_path / "cut.xlsx", whole[:100]))


def test_sniff_reads_only_the_head(tmp_path: Path) -> None:
    """A 300 MB single-line CSV is sniffed from its first 4 KB."""
    path = tmp_path / "big.csv"
    with path.open("wb") as handle:
        handle.write(b"Promo Code,Expires," + b"x" * (1 << 20))
    assert sniff(path) is Kind.CSV
