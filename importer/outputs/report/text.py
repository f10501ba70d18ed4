"""The report page's words for a marketer: what each refused row's issue code means and how to
fix it (:data:`ISSUES`, :data:`GENERIC_FIX` for a code not listed), and the titles of the
message sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple


class Reason(NamedTuple):
    """What a refused row's issue code means, and what the marketer should change."""

    title: str
    fix: str


#: Every issue code of :mod:`importer.rules.validate`, with its fix in a marketer's words.
ISSUES: Mapping[str, Reason] = MappingProxyType(
    {
        "bad-code": Reason(
            "The code has characters that are not allowed",
            "Use only letters, digits, - and _ in the code: remove spaces, accents and "
            "punctuation. Or empty the cell to have a code generated.",
        ),
        "invisible-character": Reason(
            "The code holds a character you cannot see",
            "Retype the code by hand in the sheet: it was pasted from an e-mail or a web page "
            "with a hidden space or mark inside it.",
        ),
        "code-lost-digits": Reason(
            "Excel turned the code into a number and lost digits",
            "Format the code column as Text in Excel, type or paste the codes again from the "
            "source, and export again: the digits Excel dropped cannot be recovered here.",
        ),
        "code-as-date": Reason(
            "Excel turned the code into a date",
            "Format the code column as Text in Excel, paste the codes again from the source, "
            "and export again.",
        ),
        "date-as-number": Reason(
            "The expiration date was saved as a number",
            "Format the date column as a date (or write it as 2031-12-31) and export again.",
        ),
        "code-too-long": Reason(
            "The code is too long",
            "Shorten the code to the limit the message gives (64 characters unless configured).",
        ),
        "duplicate-code": Reason(
            "The code appears more than once",
            "Each code may appear once, capitals or not: delete the repeated row or give it "
            "another code. The first row with the code is kept and sent.",
        ),
        "missing-code": Reason(
            "The line holds no code",
            "Put the code in the code column of the list, or delete the line.",
        ),
        "missing-expiration": Reason(
            "No expiration date",
            "Fill in the date the code stops working, for example 2031-12-31.",
        ),
        "bad-expiration": Reason(
            "The expiration date cannot be read",
            "Write the date as 2031-12-31, or use a date cell. If the message says day and "
            "month look swapped, ask for input.dayfirst to be set for this sheet.",
        ),
        "expired": Reason(
            "The expiration date has passed",
            "Choose a date from today on: a code that has already expired cannot be redeemed.",
        ),
        "multiple-entitlements": Reason(
            "The row names more than one thing to unlock",
            "Keep exactly one video, playlist, plan or pass plan on the row; put each other "
            "one on a row of its own, with its own code.",
        ),
        "bad-entitlement-type": Reason(
            "The entitlement type is not one the importer knows",
            "Write video, playlist, plan or pass plan in the type column, next to the id.",
        ),
        "missing-entitlement": Reason(
            "The row names nothing to unlock",
            "Fill in the Zype id of the video, playlist, plan or pass plan the code unlocks.",
        ),
        "bad-entitlement-id": Reason(
            "The id is not a Zype id",
            "Copy the 24-character id (digits and the letters a to f) from the Zype dashboard; "
            "check for a missing, extra or swapped character.",
        ),
        "bad-quantity": Reason(
            "The quantity is not a usable number",
            "Write a whole number from 1 up to the limit in the message, or empty the cell "
            "for a single code.",
        ),
        "quantity-with-code": Reason(
            "A row with a code asks for several codes",
            "Empty the code cell to have that many codes generated, or set the quantity to 1.",
        ),
    }
)

#: For an issue code added to the validator after this page was written.
GENERIC_FIX = (
    "Read the message beside each row, correct the cell in the spreadsheet and run the same "
    "command again: only changed and unfinished rows are sent."
)

#: Titles of the message sections for the statuses that have one.
_SECTION_TITLES = {
    "rejected": "Rejected by the API",
    "failed": "Failed (the next run tries them again)",
    "pending": "Not finished (the next run picks them up)",
}
