"""``cards``: which codes are printed and in what order (pure, table-tested), the refusals a
user sees (each one line and exit 2 with nothing written, no key needed and no request sent),
and the real renderers read back: the PDF through poppler and zxing-cpp, the zip's images
through Pillow and zxing-cpp."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from PIL import Image

from importer.cli import main
from importer.commands.cards import card_codes, make_card, unlocks
from importer.config import CardsConfig
from importer.journal import Created, open_journal
from importer.models import Outcome, Record, Status
from importer.outputs.cards import Card, write_pdf, write_zip
from importer.sandbox import MISSING_ID
from tests.printing import (
    decode_qr,
    page_count,
    page_images,
    page_size_mm,
    page_texts,
    pdf_info,
    require_poppler,
)
from tests.servers import KEY, independent_api, sandbox_in_thread

VIDEO = "5a1b2c3d4e5f60718293a4b5"
PLAN = "8d4e5f60718293a4b5c6d7e8"
TODAY = date(2030, 6, 1)


def _record(row: int, key: str, code: str = "", expires: str = "2031-12-31") -> Record:
    return Record(row, key, code, expires, "video", VIDEO, key.startswith("gen:"))


def _created(
    row: int, key: str, code: str, api_id: str, expires: str = "2031-12-31", title: str = ""
) -> Created:
    return Created(_record(row, key, code, expires), api_id, "created", 0.0, title)


def _order(records: list[Record], created: list[Created]) -> list[tuple[int, str]]:
    return [(c.record.row, c.record.code) for c in card_codes(records, created, TODAY).codes]


def test_codes_follow_the_sheet_not_the_journals_row_numbers() -> None:
    # Two rows were inserted above since the codes were created: the journal says 2 and 3.
    created = [_created(2, "code:A", "A", "a" * 24), _created(3, "code:B", "B", "b" * 24)]
    sheet = [_record(4, "code:B", "B"), _record(5, "code:A", "A"), _record(6, "code:NEW", "NEW")]
    assert _order(sheet, created) == [(4, "B"), (5, "A")]  # NEW was never created


def test_the_codes_of_a_quantity_row_follow_each_other_in_order() -> None:
    keys = [f"gen:h:1:{n}" for n in range(3)]
    created = [_created(7, k, f"G{n}", f"{n:024x}") for n, k in enumerate(keys)]
    sheet = [_record(2, "code:A", "A"), *(_record(3, k) for k in keys)]  # codes not assigned
    chosen = card_codes(sheet, [*reversed(created), _created(2, "code:A", "A", "a" * 24)], TODAY)
    assert [(c.record.row, c.record.code) for c in chosen.codes] == [
        (2, "A"),
        (3, "G0"),
        (3, "G1"),
        (3, "G2"),
    ]


def test_a_code_whose_row_was_removed_is_printed_at_its_last_row() -> None:
    created = [
        _created(2, "code:A", "A", "a" * 24),
        _created(3, "code:GONE", "GONE", "b" * 24),
        _created(4, "code:C", "C", "c" * 24),
    ]
    sheet = [_record(2, "code:A", "A"), _record(3, "code:C", "C")]  # row 3 deleted, C moved up
    chosen = card_codes(sheet, created, TODAY)
    assert [(c.record.row, c.record.code) for c in chosen.codes] == [
        (2, "A"),
        (3, "C"),
        (3, "GONE"),
    ]
    assert [c.record.code for c in chosen.not_in_sheet] == ["GONE"]


def test_a_generated_code_pasted_into_the_sheet_is_printed_once() -> None:
    same = "d" * 24  # the journal holds it under the generated key and the pasted one
    created = [_created(5, "gen:h:1:0", "XY7", same), _created(5, "code:XY7", "XY7", same)]
    assert _order([_record(5, "code:XY7", "XY7")], created) == [(5, "XY7")]


def test_expired_codes_are_left_out_and_counted() -> None:
    created = [
        _created(2, "code:OLD", "OLD", "a" * 24, expires="2030-05-31"),
        _created(3, "code:LAST", "LAST", "b" * 24, expires="2030-06-01"),  # still good today
    ]
    chosen = card_codes([], created, TODAY)
    assert [c.record.code for c in chosen.codes] == ["LAST"]
    assert [c.record.code for c in chosen.expired] == ["OLD"]
    assert [c.record.code for c in chosen.not_in_sheet] == ["LAST"]


@pytest.mark.parametrize(
    ("kind", "title", "expected"),
    [
        ("video", "The Movie", "The Movie"),
        ("video", "", "a video"),
        ("playlist", "", "a playlist"),
        ("plan", "", "a subscription plan"),
        ("pass_plan", "", "a pass plan"),
    ],
)
def test_what_a_card_says_it_unlocks(kind: str, title: str, expected: str) -> None:
    record = Record(2, "code:A", "A", "2031-12-31", kind, VIDEO)
    assert unlocks(Created(record, "a" * 24, "created", 0.0, title)) == expected


def test_a_card_holds_the_url_with_its_code_or_the_bare_code() -> None:
    code = _created(2, "code:AB-12", "AB-12", "a" * 24, title="The Movie")
    bare = make_card(code, CardsConfig())
    assert (bare.qr, bare.url, bare.code) == ("AB-12", "", "AB-12")
    assert bare.expiry == "Valid until 31 December 2031"
    assert (bare.unlocks, bare.title, bare.row) == ("The Movie", "Your promo code", 2)
    linked = make_card(code, CardsConfig(url="https://watch.example.tv/r?code={code}"))
    assert linked.qr == linked.url == "https://watch.example.tv/r?code=AB-12"


# -- the command line: refusals -----------------------------------------------------------------


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    path = tmp_path / "promo.csv"
    path.write_text(f"Promo Code,Expires,Video ID\nCARD-1,2031-03-01,{VIDEO}\n")
    return path


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """cards never needs the key: every test here runs without one."""
    monkeypatch.delenv("ZYPE_API_KEY", raising=False)


def _created_journal(sheet: Path) -> Path:
    """The journal a run of *sheet* leaves behind, its one row created."""
    path = sheet.with_name(f"{sheet.stem}.results.journal")
    journal = open_journal(path)
    record = Record(2, "code:CARD-1", "CARD-1", "2031-03-01", "video", VIDEO)
    journal.mark_sending([record])
    journal.record(record, Outcome(Status.CREATED, api_id="e" * 24, content_title="The Movie"))
    journal.close()
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("zype-import: error: ")
    return lines[0]


def _written(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if "cards" in p.name or p.name.startswith(".")}


def test_a_sheet_never_run_is_refused_naming_the_journal(
    sheet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cards", str(sheet)]) == 2
    line = _one_error_line(capsys)
    assert "promo.results.journal" in line
    assert "never run" in line
    assert _written(sheet.parent) == set()


def test_a_journal_with_nothing_created_is_refused(
    sheet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sheet.with_name("promo.results.journal")
    journal = open_journal(path)
    record = Record(2, "code:CARD-1", "CARD-1", "2031-03-01", "video", VIDEO)
    journal.mark_sending([record])
    journal.record(record, Outcome(Status.REJECTED, error="Video not found", http_status=422))
    journal.close()
    assert main(["cards", str(sheet)]) == 2
    assert "holds no created code" in _one_error_line(capsys)
    assert _written(sheet.parent) == set()


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        ("cards:\n  url: https://watch.example.tv/redeem\n", "'cards.url' must contain {code}"),
        ("cards:\n  url: https://x.tv/{code}/{campaign}\n", "'cards.url' has an unknown"),
        ("cards:\n  url: mailto:{code}@example.tv\n", "'cards.url' must be an http:// or"),
        ("cards:\n  expiry: until {day}\n", "'cards.expiry' has an unknown placeholder"),
        ("cards:\n  logo: missing.png\n", "'cards.logo': cannot read missing.png"),
    ],
)
def test_bad_cards_settings_are_refused_naming_the_key(
    sheet: Path,
    yaml: str,
    key: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _created_journal(sheet)
    config = sheet.with_name("settings.yaml")
    config.write_text(yaml)
    monkeypatch.chdir(sheet.parent)
    assert main(["cards", str(sheet), "--config", str(config)]) == 2
    assert key in _one_error_line(capsys)
    assert _written(sheet.parent) == set()


def test_a_logo_that_is_no_image_is_refused(
    sheet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _created_journal(sheet)
    logo = sheet.with_name("logo.png")
    logo.write_text("<svg/>")
    config = sheet.with_name("settings.yaml")
    config.write_text(f"cards:\n  logo: {logo}\n")
    assert main(["cards", str(sheet), "--config", str(config)]) == 2
    line = _one_error_line(capsys)
    assert "'cards.logo'" in line
    assert "is not a PNG or JPEG image" in line
    assert _written(sheet.parent) == set()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("folder.pdf", "is a directory"),  # a directory where the file would go
        ("plain-file/cards.pdf", "cannot write the cards file there"),  # a file for a folder
        ("cards.png", "the cards go into a .pdf, or a .zip"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused(
    sheet: Path, name: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _created_journal(sheet)
    (sheet.parent / "folder.pdf").mkdir()
    (sheet.parent / "plain-file").write_text("")
    output = sheet.parent / name
    assert main(["cards", str(sheet), "--output", str(output)]) == 2
    line = _one_error_line(capsys)
    assert str(output) in line
    assert message in line
    assert [p.name for p in sheet.parent.rglob("*.pdf")] == ["folder.pdf"]
    assert not list(sheet.parent.rglob(".*"))


def decode_png(data: bytes) -> Any:
    """A PNG as a grey PIL image, for zxing-cpp."""
    return Image.open(io.BytesIO(data)).convert("L")


# -- the renderers on their own -------------------------------------------------------------------


def _cards(count: int, title: str = "Movie night") -> list[Card]:
    return [
        Card(
            row=n + 2,
            code=f"CODE-{n:04d}",
            qr=f"https://watch.example.tv/redeem?code=CODE-{n:04d}",
            url=f"https://watch.example.tv/redeem?code=CODE-{n:04d}",
            title=title,
            unlocks=f"The Movie {n}",
            expiry="Valid until 31 December 2031",
            expiration_date="2031-12-31",
        )
        for n in range(count)
    ]


def _pdf(tmp_path: Path, cards: list[Card], page: str = "A4") -> tuple[Path, int]:
    path = tmp_path / "cards.pdf"
    with path.open("wb") as handle:
        pages = write_pdf(handle, cards, page=page, logo=None)
    return path, pages


def test_a_pdf_of_23_cards_is_three_a4_pages_every_qr_and_text_readable(tmp_path: Path) -> None:
    require_poppler()
    cards = _cards(23)
    pdf, pages = _pdf(tmp_path, cards)
    assert pages == 3
    info = pdf_info(pdf)
    assert info["Pages"] == "3"
    assert info["Page size"].startswith("595.276 x 841.89 pts")
    images = page_images(pdf)
    decoded = [sorted(decode_qr(image)) for image in images]
    assert [len(page) for page in decoded] == [10, 10, 3]
    for n, page in enumerate(decoded):
        assert page == sorted(card.qr for card in cards[n * 10 : n * 10 + 10])
    texts = page_texts(pdf)
    for n, card in enumerate(cards):
        page = texts[n // 10]
        for text in (card.code, card.title, card.unlocks, card.expiry):
            assert text in page


def test_letter_pages(tmp_path: Path) -> None:
    require_poppler()
    pdf, pages = _pdf(tmp_path, _cards(12), page="Letter")
    assert pages == page_count(pdf) == 2
    width, height = page_size_mm(pdf)
    assert (round(width * 72 / 25.4), round(height * 72 / 25.4)) == (612, 792)
    assert [len(decode_qr(image)) for image in page_images(pdf)] == [10, 2]


def test_a_title_beyond_latin1_and_a_long_code_do_not_crash(tmp_path: Path) -> None:
    require_poppler()
    cards = _cards(2, title="Кино (ночь) \\ 映画")
    cards[1] = cards[1]._replace(code="LONG-" + "X" * 40, qr="LONG-" + "X" * 40)
    pdf, pages = _pdf(tmp_path, cards)
    assert pages == 1
    [text] = page_texts(pdf)
    assert "LONG-" + "X" * 40 in text
    assert sorted(decode_qr(page_images(pdf)[0])) == sorted(card.qr for card in cards)


def test_a_jpeg_logo_is_drawn(tmp_path: Path) -> None:
    require_poppler()
    buffer = io.BytesIO()
    Image.new("RGB", (120, 40), (200, 30, 30)).save(buffer, format="JPEG")
    pdf = tmp_path / "cards.pdf"
    with pdf.open("wb") as handle:
        assert write_pdf(handle, _cards(3), page="A4", logo=buffer.getvalue()) == 1
    assert len(decode_qr(page_images(pdf)[0])) == 3
    assert b"/DCTDecode" in pdf.read_bytes()


def test_the_zip_of_pngs_decodes_and_its_index_is_excel_safe(tmp_path: Path) -> None:
    cards = _cards(4)
    cards[0] = cards[0]._replace(unlocks="=HYPERLINK(1)")
    path = tmp_path / "cards.zip"
    with path.open("wb") as handle:
        assert write_zip(handle, cards, image="png") == 4
    with zipfile.ZipFile(path) as archive:
        for card in cards:
            assert decode_qr(decode_png(archive.read(f"{card.code}.png"))) == [card.qr]
        raw = archive.read("index.csv")
    assert raw.startswith(b"\xef\xbb\xbfrow,code,url,expiration_date,unlocks\r\n")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0]["unlocks"] == "'=HYPERLINK(1)"
    assert [row["code"] for row in rows] == [card.code for card in cards]


# -- end to end: a sheet run against an imitation API, then printed and read back ------------

PLAYLIST = "9e5f60718293a4b5c6d7e8f9"
URL = "https://watch.example.tv/redeem?code={code}"


def _mixed_sheet(path: Path) -> Path:
    """Valid rows over a video and a plan, invalid rows, one the API rejects, a quantity row."""
    lines = ["Promo Code,Expires,Video ID,Plan ID,Qty"]
    lines += [
        f"CARD-{n:04d},2031-06-30,{VIDEO if n % 2 else ''},{'' if n % 2 else PLAN},"
        for n in range(1, 13)
    ]
    lines += [
        f"BAD CODE!,2031-06-30,{VIDEO},,",  # invalid: a space and a !
        f"CARD-NODATE,someday,{VIDEO},,",  # invalid: no date
        f"CARD-REJECTED,2031-06-30,{MISSING_ID},,",  # the API answers 422: not found
        f",2031-07-31,{VIDEO},,5",  # five generated codes
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The mixed sheet run against the sandbox, with the created codes and their titles."""
    sheet = _mixed_sheet(tmp_path / "promo.csv")
    config = tmp_path / "settings.yaml"
    config.write_text(f"cards:\n  url: '{URL}'\n  title: Movie night\n")
    with sandbox_in_thread() as api:
        monkeypatch.setenv("ZYPE_API_KEY", KEY)
        assert main(["run", str(sheet), "--api-url", api.url, "--no-progress"]) == 1
        monkeypatch.delenv("ZYPE_API_KEY")
        titles = {code: obj["content_title"] for code, obj in api.state.codes.items()}
        requests = api.state.requests
        pdf = tmp_path / "promo.cards.pdf"
        assert main(["cards", str(sheet), "--config", str(config), "--no-progress"]) == 0
        archive = tmp_path / "promo.zip"
        out = ["--output", str(archive)]
        assert main(["cards", str(sheet), "--config", str(config), "--no-progress", *out]) == 0
        assert api.state.requests == requests  # cards sent nothing
    results = _results(tmp_path / "promo.results.csv")
    created = [line for line in results if line["status"] == "created"]
    others = [line["code"] for line in results if line["status"] != "created"]
    assert len(created) == 17
    assert len(others) == 3
    return {
        "pdf": pdf,
        "zip": archive,
        "created": created,
        "others": [code for code in others if code],
        "titles": titles,
        "config": config,
        "sheet": sheet,
    }


def test_the_pdf_holds_one_card_per_created_code_ten_a_page_on_a4(
    printed: dict[str, Any],
) -> None:
    require_poppler()
    pdf: Path = printed["pdf"]
    created: list[dict[str, str]] = printed["created"]
    assert page_count(pdf) == 2
    width, height = page_size_mm(pdf)
    assert (round(width), round(height)) == (210, 297)
    decoded = [sorted(decode_qr(image)) for image in page_images(pdf)]
    assert [len(page) for page in decoded] == [10, 7]
    urls = [URL.format(code=line["code"]) for line in created]
    assert decoded[0] + decoded[1] == sorted(urls[:10]) + sorted(urls[10:])
    texts = page_texts(pdf)
    for n, line in enumerate(created):
        page = texts[n // 10]
        assert line["code"] in page
        assert printed["titles"][line["code"]] in page
        assert "Valid until 30 June 2031" in page or "Valid until 31 July 2031" in page
    assert texts[0].count("Movie night") == 10
    assert texts[1].count("Movie night") == 7
    everything = "\n".join(texts)
    for code in printed["others"]:
        assert code not in everything


def test_the_zip_holds_one_png_per_created_code_and_an_index(printed: dict[str, Any]) -> None:
    created: list[dict[str, str]] = printed["created"]
    with zipfile.ZipFile(printed["zip"]) as archive:
        names = archive.namelist()
        assert sorted(names) == sorted([f"{line['code']}.png" for line in created] + ["index.csv"])
        for line in created:
            image = decode_png(archive.read(f"{line['code']}.png"))
            assert decode_qr(image) == [URL.format(code=line["code"])]
        index = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode("utf-8-sig"))))
    assert [row["code"] for row in index] == [line["code"] for line in created]
    assert list(index[0]) == ["row", "code", "url", "expiration_date", "unlocks"]
    for row, line in zip(index, created, strict=True):
        assert (row["row"], row["expiration_date"]) == (line["row"], line["expiration_date"])
        assert row["url"] == URL.format(code=line["code"])
        assert row["unlocks"] == printed["titles"][line["code"]]


def test_svg_images_on_request(printed: dict[str, Any], tmp_path: Path) -> None:
    config: Path = printed["config"]
    config.write_text(config.read_text() + "  image: svg\n")
    out = tmp_path / "svg.zip"
    assert (
        main(["cards", str(printed["sheet"]), "--config", str(config), "--output", str(out)]) == 0
    )
    with zipfile.ZipFile(out) as archive:
        svgs = [name for name in archive.namelist() if name.endswith(".svg")]
        assert len(svgs) == 17
        root = ElementTree.fromstring(archive.read(svgs[0]))  # noqa: S314 (our own output)
        assert root.tag.endswith("svg")


def test_codes_created_before_titles_were_kept_name_their_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_poppler()
    sheet = tmp_path / "promo.csv"
    sheet.write_text(
        "Promo Code,Expires,Video ID,Plan ID\n"
        f"OLD-1,2031-12-31,{VIDEO},\nOLD-2,2031-12-31,,{PLAN}\n"
    )
    with independent_api() as api:  # its answers carry no content_title
        monkeypatch.setenv("ZYPE_API_KEY", KEY)
        assert main(["run", str(sheet), "--api-url", api.url, "--no-progress"]) == 0
    monkeypatch.delenv("ZYPE_API_KEY")
    assert main(["cards", str(sheet), "--no-progress"]) == 0
    [text] = page_texts(sheet.with_name("promo.cards.pdf"))
    assert "a video" in text
    assert "a subscription plan" in text
    assert "Valid until 31 December 2031" in text
    assert sorted(decode_qr(page_images(sheet.with_name("promo.cards.pdf"))[0])) == [
        "OLD-1",
        "OLD-2",
    ]


def test_cards_send_nothing_and_need_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sheet = tmp_path / "promo.csv"
    sheet.write_text(f"Promo Code,Expires,Video ID\nCARD-1,2031-03-01,{VIDEO}\n")
    with sandbox_in_thread() as api:
        monkeypatch.setenv("ZYPE_API_KEY", KEY)
        assert main(["run", str(sheet), "--api-url", api.url, "--no-progress"]) == 0
        monkeypatch.delenv("ZYPE_API_KEY")
        seen = api.state.requests
        capsys.readouterr()
        assert main(["cards", str(sheet), "--no-progress"]) == 0
        assert api.state.requests == seen
    assert sheet.with_name("promo.cards.pdf").read_bytes().startswith(b"%PDF-")
    assert "1 cards on 1 A4 pages" in capsys.readouterr().err
