"""Text as pasted and as Excel leaves it: the small readers behind the loader's and the
validator's messages."""

from __future__ import annotations

import pytest

from importer.rules import damage
from importer.sheet import pasted

VID = "5f1a2b3c4d5e6f7a8b9c0d11"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"https://admin.zype.com/videos/{VID}/edit", VID),
        (f"https://admin.zype.com/videos/{VID.upper()}", VID),
        (f"admin.zype.com/playlists/{VID}", VID),
        (f"https://api.zype.com/videos/{VID}.json?api_key=x", VID),
        (f"http://api.zype.com/subscription_plans/{VID}/", VID),
        (f"https://play.zype.com/videos/{VID}/edit#details", VID),
        # The same id twice is still one id.
        (f"https://admin.zype.com/videos/{VID}/players/{VID}", VID),
        # Not exactly one id, not Zype's, or not an address: left for the validator to refuse.
        (f"https://admin.zype.com/playlists/{VID}/videos/60aa11bb22cc33dd44ee5501", None),
        ("https://admin.zype.com/videos", None),
        (f"https://example.com/videos/{VID}", None),
        (f"https://zype.com.example.net/videos/{VID}", None),
        (f"https://admin.zype.com/videos?id={VID}", None),
        (f"https://admin.zype.com/videos/{VID}0/edit", None),
        (VID, None),
    ],
)
def test_zype_id(text: str, expected: str | None) -> None:
    assert pasted.zype_id(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SAVE10", None),
        ("SAVE 10", None),  # a plain space is visible: bad-code says so
        ("SAVE\u200b10", (4, "zero-width space, U+200B")),
        ("S\u00a0AVE", (1, "non-breaking space, U+00A0")),
        ("AB\u2009C", (2, "thin space, U+2009")),
        ("AB\u200eC", (2, "left-to-right mark, U+200E")),
    ],
)
def test_invisible(text: str, expected: tuple[int, str] | None) -> None:
    assert pasted.invisible(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("47848", "2030-12-31"),
        ("47848.75", "2030-12-31"),
        ("32874", "1990-01-01"),
        ("109574", ""),  # six digits: some other number
        ("32873", ""),
        ("4784", ""),
        ("2030", ""),
        ("47848x", ""),
    ],
)
def test_serial_date(text: str, expected: str) -> None:
    assert damage.serial_date(text) == expected


@pytest.mark.parametrize(
    ("code", "lost", "date"),
    [
        ("1.23457E+11", True, False),
        ("1E+15", True, False),
        ("123456789012", False, False),
        ("E12", False, False),
        ("2-Sep", False, True),
        ("02-Sep-2031", False, True),
        ("Sep-31", False, True),
        ("2-SEP", False, False),  # Excel writes its month names in title case
        ("SEP-2", False, False),
        ("2031-09-02", False, True),
        ("9/2/2031", False, True),
        ("SUMMER-2031", False, False),
    ],
)
def test_excel_damage_shapes(code: str, lost: bool, date: bool) -> None:
    assert (damage.lost_digits(code), damage.date_shaped(code)) == (lost, date)
    assert not date or len(code) <= damage.LONGEST_DATE


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"https://admin.zype.com/videos/{VID}/edit", "video"),
        (f"https://admin.zype.com/playlists/{VID}", "playlist"),
        (f"https://api.zype.com/plans/{VID}.json", "plan"),
        (f"https://admin.zype.com/subscription_plans/{VID}", "plan"),
        (f"https://admin.zype.com/pass_plans/{VID}", "pass_plan"),
        (f"https://admin.zype.com/players/{VID}", None),
        (f"https://admin.zype.com/{VID}", None),
        (f"https://admin.zype.com/videos?playlists/{VID}", None),
    ],
)
def test_address_kind(text: str, kind: str | None) -> None:
    assert pasted.address_kind(text) == kind
