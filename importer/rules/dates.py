"""Expiration dates as people write them: read the unambiguous ones, explain the rest.

:func:`iso_date` reads one cell, strictly: nothing is guessed and no part is filled in from
today. It takes

- ``2031-12-31`` and ``2031/12/31``; slash dates ``12/31/2031`` (month first, or day first
  with ``dayfirst``); dotted ``31.12.2031`` (always day first: no one writes dots month first);
- month names in English, full or three letters, with or without a dot or comma:
  ``31-Dec-2031``, ``31 December 2031``, ``December 31, 2031``, ``Dec 31 2031``,
  ``2031-Dec-31``, with an optional weekday in front (``Wednesday, December 31, 2031``), which
  must then be right;
- any of those followed by a time, which is dropped (``2031-12-31 00:00:00``,
  ``2031-12-31T00:00:00Z``, ``12/31/2031 11:59 PM``): codes expire on a day.

Years have four digits. :func:`why_not` says, for a cell that was refused, which reading
failed and why, in words a marketer understands.
"""

from __future__ import annotations

import re
from datetime import date

_TIME = (
    r"(?:(?:[T ]|,?\s+)\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[AaPp][Mm])?\s*"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:(?P<wd>mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d+)"  # any length here, so that a 2-digit year can be named as the fault
#: (name of the reading, pattern). Numbers only (the first three), then month names.
_FORMS = (
    ("year-month-day", r"(?P<year>\d{4})(?P<sep>[-/])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})"),
    ("slash", r"(?P<a>\d{1,2})/(?P<b>\d{1,2})/" + _YEAR),
    ("day.month.year", r"(?P<day>\d{1,2})\.(?P<month>\d{1,2})\." + _YEAR),
    ("day month year", rf"{_WEEKDAY}{_DAY}[-\s]\s*{_MONTH}[-\s,]\s*{_YEAR}"),
    ("month day year", rf"{_WEEKDAY}{_MONTH}[-\s]\s*{_DAY},?[-\s]\s*{_YEAR}"),
    ("year month day", rf"{_YEAR}-{_MONTH}-{_DAY}"),
)  # fmt: skip
_PATTERNS = tuple(
    (name, re.compile(rf"{form}{_TIME}\Z", re.ASCII | re.IGNORECASE)) for name, form in _FORMS
)
_SPACES = str.maketrans(dict.fromkeys("\xa0\u2007\u2009\u202f", " "))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTH_NAMES = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def iso_date(text: str, dayfirst: bool) -> str:
    """*text* as ``YYYY-MM-DD``, or ``""`` when it is not a date read as described above."""
    reading = _read(text, dayfirst)
    return reading[1] if reading is not None and not reading[2] else ""


def why_not(text: str, dayfirst: bool) -> str:
    """Why *text* is not a date, as the end of "expiration date '...' is not a date"."""
    reading = _read(text, dayfirst)
    if reading is None:
        return ""
    name, _, fault = reading
    message = f": read as {name}, {fault}" if fault else ""
    if "/" in name and iso_date(text, not dayfirst):
        order = "day/month/year" if not dayfirst else "month/day/year"
        setting = "true" if not dayfirst else "false"
        message = f" (it reads as {order}: set input.dayfirst: {setting} for this sheet)"
    return message


def _read(text: str, dayfirst: bool) -> tuple[str, str, str] | None:
    """(the reading that matched, the ISO date or ``""``, what is wrong or ``""``), or None
    when *text* has no date's shape at all."""
    if not text.isascii():  # "Dec 31, 2031" typed with a non-breaking space is still a date
        text = text.translate(_SPACES)
    for name, pattern in _PATTERNS:
        found = pattern.match(text)
        if found is None:
            continue
        parts = found.groupdict()
        if name == "slash":
            month, day = (parts["b"], parts["a"]) if dayfirst else (parts["a"], parts["b"])
            name = "day/month/year" if dayfirst else "month/day/year"
        else:
            day = parts["day"]
            month = parts.get("month") or str(_MONTHS.index(parts["mon"][:3].lower()) + 1)
        year = parts["year"]
        if len(year) != 4:
            return name, "", f"the year '{year}' must have four digits"
        return (name, *_check(int(year), int(month), int(day), parts.get("wd")))
    return None


def _check(year: int, month: int, day: int, weekday: str | None) -> tuple[str, str]:
    """(ISO date, "") for a real date, else ("", what is wrong)."""
    if not 1 <= month <= 12:
        return "", f"there is no month {month}"
    if year < 1:
        return "", "there is no year 0"
    try:
        real = date(year, month, day)
    except ValueError:
        return "", f"{_MONTH_NAMES[month - 1]} {year} has no day {day}"
    if weekday is not None and _WEEKDAYS.index(weekday.lower()) != real.weekday():
        named = _WEEKDAY_NAMES[_WEEKDAYS.index(weekday.lower())]
        return "", f"{real.isoformat()} is a {_WEEKDAY_NAMES[real.weekday()]}, not a {named}"
    return real.isoformat(), ""
