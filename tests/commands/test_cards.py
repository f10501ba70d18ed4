"""``cards``: which codes are printed and in what order (pure, table-tested), and the refusals a
user sees, each one line and exit 2 with nothing written, no key needed and no request sent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from importer.cli import main
from importer.commands.cards import card_codes, make_card, unlocks
from importer.config import CardsConfig
from importer.journal import Created, open_journal
from importer.models import Outcome, Record, Status

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
