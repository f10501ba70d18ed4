"""The validator: one table of cases per rule, the rule order, and generated-code keys."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.config import InputConfig
from importer.models import Record, RowIssue
from importer.rules.validate import Checked, generated_key, validate, validate_codes
from importer.sheet.load import COLUMNS, Sheet

TODAY = date(2026, 6, 15)
CONFIG = InputConfig()
VID = "5f1a2b3c4d5e6f7a8b9c0d11"
PID = "60aa11bb22cc33dd44ee5501"
OK = {"code": "A1", "expiration_date": "2030-01-01", "video_id": VID}


def sheet(*rows: dict[str, str], rows_from: int = 2) -> Sheet:
    """A loaded sheet as :func:`importer.sheet.load.load` makes it: text cells, canonical names."""
    columns = list(dict.fromkeys(c for row in rows for c in row)) or ["expiration_date"]
    frame = pd.DataFrame({c: [row.get(c, "") for row in rows] for c in columns}, dtype=str)
    frame["row"] = list(range(rows_from, rows_from + len(rows)))
    return Sheet("promo.csv", frame)


def check(*rows: dict[str, str], config: InputConfig = CONFIG) -> Checked:
    return validate(sheet(*rows), config, TODAY)


def only_issue(*rows: dict[str, str], config: InputConfig = CONFIG) -> RowIssue:
    checked = check(*rows, config=config)
    assert len(checked.issues) == 1, checked.issues
    return checked.issues[0]


def key(fingerprint: str, occurrence: int = 0, n: int = 0) -> str:
    return f"gen:{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}:{occurrence}:{n}"


# --- one table per rule ---------------------------------------------------------------------

RULES = [
    # (changes to a valid row, issue, column, message)
    ({"code": "AB C!"}, "bad-code", "code",
     "code 'AB C!' may only contain letters, digits, - and _"),
    ({"code": "ÉTÉ2030"}, "bad-code", "code", "code 'ÉTÉ2030' may only contain"),
    ({"code": "A.B"}, "bad-code", "code", "may only contain letters, digits, - and _"),
    ({"code": "1.23457E+11"}, "code-lost-digits", "code",
     "code '1.23457E+11' is a number Excel shortened to scientific notation, and its other"
     " digits are lost: format the code column as Text in Excel"),
    ({"code": "4.5E-07"}, "code-lost-digits", "code", "scientific notation"),
    ({"code": "1,23457E+11"}, "code-lost-digits", "code", "scientific notation"),
    ({"code": "2-Sep"}, "code-as-date", "code",
     "code '2-Sep' is a date that Excel made of the code (it does so to codes such as SEP2 or"
     " 1-2): format the code column as Text in Excel"),
    ({"code": "02-Jan-31"}, "code-as-date", "code", "is a date that Excel made of the code"),
    ({"code": "Mar-10"}, "code-as-date", "code", "is a date that Excel made of the code"),
    ({"code": "2031-09-02"}, "code-as-date", "code", "is a date that Excel made of the code"),
    ({"code": "9/2/2031"}, "code-as-date", "code", "is a date that Excel made of the code"),
    ({"code": "SAVE\u200b10"}, "invisible-character", "code",
     "code 'SAVE\u200b10' has an invisible character (zero-width space, U+200B) after 'SAVE',"
     " pasted with it from an e-mail or a web page: delete it or type the code again"),
    ({"code": "SAVE\xa010"}, "invisible-character", "code",
     "(non-breaking space, U+00A0) after 'SAVE'"),
    ({"code": "AB\u2060C"}, "invisible-character", "code", "(word joiner, U+2060) after 'AB'"),
    ({"code": "A\tB"}, "invisible-character", "code", "(tab, U+0009) after 'A'"),
    ({"code": "X" * 65}, "code-too-long", "code", "code is 65 characters long; the limit is 64"),
    ({"expiration_date": ""}, "missing-expiration", "expiration_date", "no expiration date"),
    ({"expiration_date": "31/31/2025"}, "bad-expiration", "expiration_date",
     "expiration date '31/31/2025' is not a date"),
    ({"expiration_date": "2030-02-30"}, "bad-expiration", "expiration_date", "is not a date"),
    ({"expiration_date": "next week"}, "bad-expiration", "expiration_date", "is not a date"),
    ({"expiration_date": "12/31/30"}, "bad-expiration", "expiration_date", "is not a date"),
    ({"expiration_date": "30-12-31"}, "bad-expiration", "expiration_date", "is not a date"),
    ({"expiration_date": "20301231"}, "bad-expiration", "expiration_date", "is not a date"),
    ({"expiration_date": "47848"}, "date-as-number", "expiration_date",
     "expiration date '47848' is the number a spreadsheet stores for 2030-12-31, not a date:"
     " the column was saved as numbers; format it as a date and export again"),
    ({"expiration_date": "47848.5"}, "date-as-number", "expiration_date", "for 2030-12-31"),
    ({"expiration_date": "123"}, "bad-expiration", "expiration_date", "is not a date"),
    ({"expiration_date": "2031-02-30"}, "bad-expiration", "expiration_date",
     "expiration date '2031-02-30' is not a date: read as year-month-day, February 2031 has no"
     " day 30"),
    ({"expiration_date": "30-Feb-2031"}, "bad-expiration", "expiration_date",
     "read as day month year, February 2031 has no day 30"),
    ({"expiration_date": "Feb 30, 2031"}, "bad-expiration", "expiration_date",
     "read as month day year, February 2031 has no day 30"),
    ({"expiration_date": "2031-13-01"}, "bad-expiration", "expiration_date",
     "read as year-month-day, there is no month 13"),
    ({"expiration_date": "31-Dec-31"}, "bad-expiration", "expiration_date",
     "read as day month year, the year '31' must have four digits"),
    ({"expiration_date": "Monday, December 31, 2031"}, "bad-expiration", "expiration_date",
     "read as month day year, 2031-12-31 is a Wednesday, not a Monday"),
    ({"expiration_date": "Decembre 31, 2031"}, "bad-expiration", "expiration_date",
     "expiration date 'Decembre 31, 2031' is not a date"),
    ({"expiration_date": "31 Dec"}, "bad-expiration", "expiration_date", "is not a date"),
    ({"expiration_date": "2030-12-31 noon"}, "bad-expiration", "expiration_date", "not a date"),
    ({"expiration_date": "31/12/2030"}, "bad-expiration", "expiration_date",
     "expiration date '31/12/2030' is not a date (it reads as day/month/year: set"
     " input.dayfirst: true for this sheet)"),
    ({"expiration_date": "٢٠٣٠-01-01"}, "bad-expiration", "expiration_date", "not a date"),
    ({"expiration_date": "13/01/2030"}, "bad-expiration", "expiration_date", "not a date"),
    ({"expiration_date": "0000-01-01"}, "bad-expiration", "expiration_date", "not a date"),
    ({"expiration_date": "2020-01-01"}, "expired", "expiration_date",
     "expiration date 2020-01-01 has passed"),
    ({"expiration_date": "6/14/2026"}, "expired", "expiration_date",
     "expiration date 2026-06-14 has passed"),
    ({"video_id": ""}, "missing-entitlement", "video_id",
     "names no video, playlist, plan or pass plan"),
    ({"playlist_id": PID}, "multiple-entitlements", "playlist_id",
     f"names more than one entitlement: video {VID}, playlist {PID}"),
    ({"video_id": "", "entitlement_type": "episode", "entitlement_id": VID},
     "bad-entitlement-type", "entitlement_type",
     "entitlement type 'episode' is not one of video, playlist, plan, pass plan"),
    ({"video_id": "", "entitlement_id": VID}, "bad-entitlement-type", "entitlement_type",
     f"entitlement id '{VID}' has no entitlement type"),
    ({"video_id": "", "entitlement_type": "video"}, "missing-entitlement", "entitlement_id",
     "entitlement type 'video' has no entitlement id"),
    ({"entitlement_type": "playlist"}, "multiple-entitlements", "entitlement_type",
     f"names more than one entitlement: video {VID}, entitlement type 'playlist'"),
    ({"entitlement_id": PID}, "multiple-entitlements", "entitlement_id",
     f"names more than one entitlement: video {VID}, entitlement id {PID}"),
    ({"entitlement_type": "Video", "entitlement_id": PID}, "multiple-entitlements",
     "entitlement_id", f"names more than one entitlement: video {VID}, Video {PID}"),
    ({"video_id": "abc"}, "bad-entitlement-id", "video_id",
     "video id 'abc' is not a 24-character Zype id"),
    ({"video_id": VID + "0"}, "bad-entitlement-id", "video_id", "is not a 24-character Zype id"),
    ({"video_id": "g" * 24}, "bad-entitlement-id", "video_id", "is not a 24-character Zype id"),
    ({"video_id": f"https://admin.zype.com/playlists/{PID}?api_key=SECRET"},
     "bad-entitlement-id", "video_id",
     f"video id 'https://admin.zype.com/playlists/{PID}' is the address of a playlist, not of a"
     " video: check the row, or move it to the playlist column"),
    ({"video_id": "https://example.com/v?api_key=SECRET"}, "bad-entitlement-id", "video_id",
     "video id 'https://example.com/v' is a web address, not a Zype id: copy the 24-character"
     " id from it"),
    ({"video_id": "", "pass_plan_id": "5f1a 2b3c"}, "bad-entitlement-id", "pass_plan_id",
     "pass plan id '5f1a 2b3c' is not a 24-character Zype id"),
    ({"video_id": "", "entitlement_type": "plan", "entitlement_id": "x"},
     "bad-entitlement-id", "entitlement_id", "plan id 'x' is not a 24-character Zype id"),
    ({"quantity": "0"}, "bad-quantity", "quantity",
     "quantity '0' is not a whole number from 1 to 100000"),
    ({"code": "", "quantity": "-1"}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": "1.5"}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": "0.0"}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": "5.5"}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": "5."}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": ".0"}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": "abc"}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": "100001"}, "bad-quantity", "quantity", "not a whole number"),
    ({"code": "", "quantity": "٣"}, "bad-quantity", "quantity", "not a whole number"),
    ({"quantity": "2"}, "quantity-with-code", "quantity",
     "a row with a code creates one code; leave the code empty to generate 2"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "issue", "column", "message"), RULES)
def test_rule(change: dict[str, str], issue: str, column: str, message: str) -> None:
    row = {**OK, **change}
    found = only_issue(row)
    assert (found.row, found.code, found.column) == (2, issue, column)
    assert message in found.message
    assert found.value == row["code"]
    assert check(row).records == []


@pytest.mark.parametrize(
    ("raw", "dayfirst", "expected"),
    [
        ("2030-12-31", False, "2030-12-31"),
        ("2030-1-5", False, "2030-01-05"),
        ("2030/12/31", False, "2030-12-31"),
        ("2030-12-31 23:59:59", False, "2030-12-31"),
        ("2030-12-31T23:59:59Z", False, "2030-12-31"),
        ("2030-12-31T10:00:00+02:00", False, "2030-12-31"),
        ("12/31/2030", False, "2030-12-31"),
        ("12/31/2030 11:59 PM", False, "2030-12-31"),
        ("1/2/2030", False, "2030-01-02"),
        ("1/2/2030", True, "2030-02-01"),
        ("31/12/2030", True, "2030-12-31"),
        ("31/12/2030 0:00", True, "2030-12-31"),
        ("31.12.2030", False, "2030-12-31"),
        ("2030-12-31", True, "2030-12-31"),
        ("2026-06-15", False, "2026-06-15"),  # today is still valid
        # Month names, as people and spreadsheets' date formats write them.
        ("31-Dec-2031", False, "2031-12-31"),
        ("31-dec-2031", True, "2031-12-31"),
        ("31 December 2031", False, "2031-12-31"),
        ("31. Dezember 2031", False, ""),  # English month names only
        ("December 31, 2031", False, "2031-12-31"),
        ("Dec 31 2031", False, "2031-12-31"),
        ("Dec. 31, 2031", False, "2031-12-31"),
        ("Sept 30, 2031", False, "2031-09-30"),
        ("Wednesday, December 31, 2031", False, "2031-12-31"),
        ("Wed 31 Dec 2031", False, "2031-12-31"),
        ("1st January 2032", False, "2032-01-01"),
        ("2031-Dec-31", False, "2031-12-31"),
        ("Dec\xa031,\u202f2031", False, "2031-12-31"),
        # Midnight, ISO timestamps, a time after a month-name date: the date part.
        ("2031-12-31 00:00:00", False, "2031-12-31"),
        ("2031-12-31T00:00:00Z", False, "2031-12-31"),
        ("2031-12-31T00:00:00.000Z", False, "2031-12-31"),
        ("Dec 31, 2031 12:00:00 AM", False, "2031-12-31"),
        ("31-Dec-2031 00:00", False, "2031-12-31"),
        ("2028-02-29", False, "2028-02-29"),
    ],
)
def test_dates_normalised(raw: str, dayfirst: bool, expected: str) -> None:
    checked = check({**OK, "expiration_date": raw}, config=InputConfig(dayfirst=dayfirst))
    assert [r.expiration_date for r in checked.records] == ([expected] if expected else [])
    assert [i.code for i in checked.issues] == ([] if expected else ["bad-expiration"])


def test_a_date_in_the_other_order_names_the_setting_that_reads_it() -> None:
    checked = check({**OK, "expiration_date": "12/31/2030"}, config=InputConfig(dayfirst=True))
    [issue] = checked.issues
    assert issue.message == (
        "expiration date '12/31/2030' is not a date (it reads as month/day/year: set"
        " input.dayfirst: false for this sheet)"
    )
    checked = check({**OK, "expiration_date": "31/31/2030"})
    assert checked.issues[0].message == (
        "expiration date '31/31/2030' is not a date: read as month/day/year, there is no month 31"
    )


@pytest.mark.parametrize(
    ("cells", "kind", "ident"),
    [
        ({"video_id": VID}, "video", VID),
        ({"playlist_id": PID.upper()}, "playlist", PID),
        ({"plan_id": VID}, "plan", VID),
        ({"pass_plan_id": VID}, "pass_plan", VID),
        ({"entitlement_type": "Video", "entitlement_id": VID}, "video", VID),
        ({"entitlement_type": "PLAYLIST", "entitlement_id": VID}, "playlist", VID),
        ({"entitlement_type": "subscription plan", "entitlement_id": VID}, "plan", VID),
        ({"entitlement_type": "Pass Plan", "entitlement_id": VID}, "pass_plan", VID),
        ({"entitlement_type": "pass_plan", "entitlement_id": VID}, "pass_plan", VID),
        # Both forms on one row, agreeing: fine.
        ({"video_id": VID, "entitlement_type": "video"}, "video", VID),
        ({"video_id": VID, "entitlement_type": "video", "entitlement_id": VID.upper()}, "video",
         VID),
    ],
)  # fmt: skip
def test_entitlement_forms(cells: dict[str, str], kind: str, ident: str) -> None:
    checked = check({"code": "A1", "expiration_date": "2030-01-01", **cells})
    assert checked.issues == []
    assert checked.records == [Record(2, "code:A1", "A1", "2030-01-01", kind, ident)]


# --- order, duplicates, counts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "issue"),
    [
        ({"code": "A B", "expiration_date": "x", "video_id": "y", "quantity": "0"}, "bad-code"),
        ({"code": "a1", "expiration_date": "x", "video_id": "y", "quantity": "0"},
         "duplicate-code"),
        ({"expiration_date": "x", "video_id": "y", "quantity": "0"}, "bad-expiration"),
        ({"expiration_date": "2020-01-01", "video_id": "y"}, "expired"),
        ({"video_id": "y", "quantity": "0"}, "bad-entitlement-id"),
        ({"video_id": "", "quantity": "0"}, "missing-entitlement"),
    ],
)  # fmt: skip
def test_first_failing_rule_wins(change: dict[str, str], issue: str) -> None:
    checked = check({**OK, "code": "A1"}, {**OK, "code": "B1", **change})
    assert [(i.row, i.code) for i in checked.issues] == [(3, issue)]


def test_duplicates_are_case_insensitive_and_the_first_stays() -> None:
    checked = check(
        {**OK, "code": "SAVE10", "expiration_date": "2020-01-01"},
        {**OK, "code": "save10"},
        {**OK, "code": "Other"},
        {**OK, "code": "Save10"},
        {**OK, "code": ""},
        {**OK, "code": ""},
    )
    assert [(i.row, i.code, i.message, i.value) for i in checked.issues] == [
        (2, "expired", "expiration date 2020-01-01 has passed", "SAVE10"),
        (3, "duplicate-code", "duplicate of row 2", "save10"),
        (5, "duplicate-code", "duplicate of row 2", "Save10"),
    ]
    assert [r.row for r in checked.records] == [4, 6, 7]


def test_counts_and_order() -> None:
    checked = check({**OK, "code": "A"}, {**OK, "code": "B", "video_id": ""}, {**OK, "code": "C"})
    assert checked.rows == 3
    assert [r.code for r in checked.records] == ["A", "C"]
    assert [i.row for i in checked.issues] == [3]


def test_empty_sheet() -> None:
    assert check() == Checked(records=[], issues=[], rows=0)


def test_max_code_length_from_config() -> None:
    found = only_issue({**OK, "code": "ABCDEFGHIJK"}, config=InputConfig(max_code_length=10))
    assert found.message == "code is 11 characters long; the limit is 10"


# --- generated codes ------------------------------------------------------------------------


def test_row_without_code_is_generated() -> None:
    checked = check({"expiration_date": "12/31/2030", "playlist_id": PID.upper()})
    fingerprint = f"2030-12-31|playlist|{PID}"
    assert checked.records == [
        Record(2, key(fingerprint), "", "2030-12-31", "playlist", PID, generated=True)
    ]
    assert checked.records[0].key == generated_key(fingerprint, 0, 0)


def test_sheet_without_code_column() -> None:
    checked = check({"expiration_date": "2030-01-01", "video_id": VID})
    assert [r.generated for r in checked.records] == [True]


@pytest.mark.parametrize("quantity", ["3", "3.0", "3.00", "03"])
def test_quantity_from_a_number_cell(quantity: str) -> None:
    checked = check({**OK, "code": "", "quantity": quantity})
    assert [r.row for r in checked.records] == [2, 2, 2]


def test_quantity_expands_in_place() -> None:
    checked = check(
        {**OK, "code": "FIRST"},
        {**OK, "code": "", "quantity": "3"},
        {**OK, "code": "LAST", "quantity": "1"},
    )
    fingerprint = f"2030-01-01|video|{VID}"
    assert [(r.row, r.key, r.generated) for r in checked.records] == [
        (2, "code:FIRST", False),
        (3, key(fingerprint, 0, 0), True),
        (3, key(fingerprint, 0, 1), True),
        (3, key(fingerprint, 0, 2), True),
        (4, "code:LAST", False),
    ]


def keys_of(*rows: dict[str, str]) -> list[str]:
    return [r.key for r in check(*rows).records if r.generated]


GEN = {"expiration_date": "2030-01-01", "video_id": VID, "code": ""}


def test_raising_a_quantity_keeps_the_first_codes() -> None:
    ten = keys_of({**GEN, "quantity": "10"})
    twelve = keys_of({**GEN, "quantity": "12"})
    assert twelve[:10] == ten
    assert len(set(twelve)) == 12


def test_identical_rows_are_numbered_by_occurrence() -> None:
    fingerprint = f"2030-01-01|video|{VID}"
    assert keys_of(GEN, {**GEN, "code": "X"}, GEN) == [key(fingerprint, 0), key(fingerprint, 1)]


def test_keys_survive_rows_inserted_elsewhere_and_respellings() -> None:
    before = keys_of(GEN, {**GEN, "playlist_id": PID, "video_id": ""})
    after = keys_of(
        {**GEN, "code": "NEW"},
        {**GEN, "expiration_date": "2031-01-01"},
        {**GEN, "expiration_date": "1/1/2030", "video_id": VID.upper()},
        {**GEN, "plan_id": "bad"},
        {**GEN, "playlist_id": PID, "video_id": ""},
    )
    assert after[0] != before[0]  # the 2031 row is a different one
    assert after[1:] == before


def test_fixing_an_earlier_identical_row_does_not_move_later_codes() -> None:
    later = {**GEN, "quantity": "2"}
    broken = keys_of({**GEN, "quantity": "zero"}, later)
    fixed = keys_of({**GEN, "quantity": "1"}, later)
    assert fixed[1:] == broken


def test_code_rows_keyed_by_upper_case_code() -> None:
    assert [r.key for r in check({**OK, "code": "Summer-1"}).records] == ["code:SUMMER-1"]


# --- properties -----------------------------------------------------------------------------

_TEXT = st.sampled_from(
    ["", "A1", "a1", "x y", "2030-01-01", "1/2/2030", "2020-01-01", VID, VID.upper(), "video",
     "plan", "3", "0", "abc", "31/31/2030", "pass plan"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({c: _TEXT for c in COLUMNS}), max_size=8))
def test_every_row_is_either_records_or_one_issue(rows: list[dict[str, str]]) -> None:
    checked = check(*rows)
    issued = [i.row for i in checked.issues]
    recorded = {r.row for r in checked.records}
    assert len(set(issued)) == len(issued)
    assert sorted(set(issued) | recorded) == list(range(2, 2 + len(rows)))
    assert not set(issued) & recorded
    assert [r.row for r in checked.records] == sorted(r.row for r in checked.records)
    assert len({r.key for r in checked.records}) == len(checked.records)
    for record in checked.records:
        assert record.entitlement_id == record.entitlement_id.lower()
        assert record.generated == (record.code == "")


def test_every_issue_code_is_in_both_tables_and_the_readme() -> None:
    """The module docstring's two tables (rules, and the named causes that refine them) list
    the issue codes the rule table above tests (duplicates have tests of their own), and the
    README documents each."""
    import re

    from importer.rules import validate as module

    tables = (module.__doc__ or "").split("=====\n")
    documented = re.findall(r"^([a-z][a-z-]+) ", tables[2] + "\n" + tables[5], re.M)
    # duplicates, and the list of codes' missing-code, have tests of their own
    assert set(documented) == {issue for _, issue, _, _ in RULES} | {
        "duplicate-code",
        "missing-code",
    }
    readme = (Path(module.__file__).parents[2] / "README.md").read_text()
    assert [code for code in documented if f"`{code}`" not in readme] == []


# -- a list of codes (revoke) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "valid", "issues"),
    [
        (["AAA1", "bbb-2", "C_3"], ["AAA1", "bbb-2", "C_3"], []),
        (["AAA1", "aaa1"], ["AAA1"], [(3, "duplicate-code", "duplicate of row 2")]),
        (["=HYPERLINK(1)"], [], [(2, "bad-code", "code '=HYPERLINK(1)' may only contain")]),
        (["1.23457E+11"], [], [(2, "code-lost-digits", "")]),
        (["2-Sep"], [], [(2, "code-as-date", "")]),
        (["SAVE\u200b10"], [], [(2, "invisible-character", "")]),
        (["A" * 65], [], [(2, "code-too-long", "")]),
        (["", "AAA1"], ["AAA1"], [(2, "missing-code", "no code on this line")]),
    ],
)
def test_a_list_of_codes_is_checked_by_the_code_rules_alone(
    codes: list[str], valid: list[str], issues: list[tuple[int, str, str]]
) -> None:
    checked = validate_codes(sheet(*({"code": c} for c in codes)), CONFIG)
    assert [r.code for r in checked.records] == valid
    assert all(r.key == "code:" + r.code.upper() for r in checked.records)
    assert all(r.fingerprint == "||" for r in checked.records)
    found = [(i.row, i.code, i.message) for i in checked.issues]
    assert [(row, code) for row, code, _ in found] == [(row, code) for row, code, _ in issues]
    for (_, _, message), (_, _, wanted) in zip(found, issues, strict=True):
        assert message.startswith(wanted)
