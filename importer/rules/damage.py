"""What Excel does to codes and dates that a person did not mean, recognised by its traces.

Excel reads every cell it opens or is typed into as a number or a date when it can, and a
CSV saved afterwards holds what the cell *shows*:

- a long number code (``123456789012``) is shown, and saved, in scientific notation
  (``1.23457E+11``): the other digits are gone for good, so the code cannot be recovered;
- a code that reads as a date (``SEP2``, ``1-2``, ``MAR-10``) becomes one and is shown as
  ``2-Sep``, ``2-Jan``, ``Mar-10``; in a workbook it is a date cell, read as ``2031-09-02``;
- a date cell formatted as a number is saved as its day number (``47848`` is 2030-12-31).

Each is refused with the cause and the cure (format the column as Text, or as a date, and
export again), rather than a generic "not allowed" or a guess.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[Ee][+-]?\d{1,3}", re.ASCII)
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
#: How Excel shows a date it made of a code: ``2-Sep``, ``02-Sep-31``, ``Mar-10`` (its own
#: title-case month, as its date formats write it), and the dates of a workbook's date cell or
#: a CSV's date column (``2031-09-02``, ``9/2/2031``).
_DATE_SHAPED = re.compile(
    rf"\d{{1,2}}-{_MON}(?:-\d{{2}}(?:\d{{2}})?)?|{_MON}-\d{{2}}"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2}(?:\d{2})?",
    re.ASCII,
)
#: The length of the longest of them, ``02-Sep-2031``: longer codes need no look.
LONGEST_DATE = 11
#: Five-digit day numbers from 1990-01-01 (32874) to 2173-10-14 (99999), in Excel's and
#: LibreOffice's count (day 0 is 1899-12-30, as Excel counts a fictitious 1900-02-29).
_SERIAL = re.compile(r"(?P<day>\d{5})(?:[.,]\d+)?", re.ASCII)
_DAY_ZERO = date(1899, 12, 30)
_FIRST = 32874


def lost_digits(code: str) -> bool:
    """Whether *code* is a number in scientific notation, as Excel shows a long number."""
    return _SCIENTIFIC.fullmatch(code) is not None


def date_shaped(code: str) -> bool:
    """Whether *code* has the shape of a date Excel made of it, rather than of a code."""
    return _DATE_SHAPED.fullmatch(code) is not None


def serial_date(text: str) -> str:
    """The ``YYYY-MM-DD`` a spreadsheet day number such as ``47848`` stands for, or ``""``
    when *text* is not one (before 1990 or past five digits it is taken for another number)."""
    found = _SERIAL.fullmatch(text)
    if found is None or int(found.group("day")) < _FIRST:
        return ""
    return (_DAY_ZERO + timedelta(days=int(found.group("day")))).isoformat()
