"""Check every row of a :class:`~importer.sheet.load.Sheet` and turn the valid ones into records.

Each rule runs over whole columns at once (a million rows take about a second); only invalid
rows get a message built one by one. A row gets ONE issue: the first failing rule in the order
*code, duplicate, expiration, entitlement, quantity*:

===================== ===============================================================
issue code            when
===================== ===============================================================
bad-code              the code has characters other than A-Z a-z 0-9 - _
code-too-long         the code is longer than ``input.max_code_length``
duplicate-code        the code repeats an earlier row's code, ignoring case; the first
                      occurrence stays valid ("duplicate of row 7")
missing-expiration    no expiration date
bad-expiration        not a date :func:`importer.rules.dates.iso_date` reads (ISO, slash,
                      dotted, English month names; a time part is dropped; 4-digit years;
                      nothing guessed); the message says which reading failed and why
expired               the date is before *today* (today itself is valid)
multiple-entitlements more than one of video_id, playlist_id, plan_id, pass_plan_id, or
                      entitlement_type/entitlement_id disagreeing with one of them
bad-entitlement-type  entitlement_type is not video, playlist, plan (subscription plan)
                      or pass plan; or an entitlement_id comes without a type
missing-entitlement   the row names no entitlement, or a type without an id
bad-entitlement-id    the id is not 24 hexadecimal characters (it is sent lower-case)
bad-quantity          quantity is not a whole number from 1 to ``input.max_quantity``
quantity-with-code    a row with a code asks for more than one
missing-code          (a list of codes, ``revoke``: :func:`validate_codes`) the line has
                      text only in an ignored column
===================== ===============================================================

Some causes of ``bad-code`` and ``bad-expiration`` are known, and curable: Excel's damage
(:mod:`importer.rules.damage`) and characters pasted from mail or the web
(:mod:`importer.sheet.pasted`).
They are checked just before the rule they refine and named instead of it:

===================== ===============================================================
issue code            when (instead of)
===================== ===============================================================
invisible-character   (bad-code) the code holds a character that shows as nothing or as a
                      space: zero-width, non-breaking, tab... (trimmed at a cell's ends)
code-lost-digits      (bad-code) the code is a number in scientific notation
                      (1.23457E+11): Excel shortened it and the other digits are lost
code-as-date          (bad-code, or a code that would pass) the code has the shape of a date
                      Excel made of it: 2-Sep, Mar-10, 2031-09-02 (a date cell), 9/2/2031
date-as-number        (bad-expiration) a spreadsheet's day number (47848 is 2030-12-31), as
                      a CSV holds a date column formatted as numbers; not guessed at
===================== ===============================================================

A row without a code stands for ``quantity`` (default 1) codes to generate: records with
``code=""``, ``generated=True`` and a key from :func:`generated_key`.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import hashlib
import itertools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from importer.config import InputConfig
from importer.models import ENTITLEMENT_KINDS, Record, RowIssue
from importer.rules import damage
from importer.rules.dates import iso_date, why_not
from importer.sheet import pasted
from importer.sheet.load import ID_COLUMNS, Sheet, normalise_header

_CODE = re.compile(r"[A-Za-z0-9_-]+")
_HEX_ID = re.compile(r"[0-9a-fA-F]{24}")
#: Loose-normalised ``entitlement_type`` values (see :func:`normalise_header`) -> kind.
TYPE_NAMES = {
    "video": "video",
    "playlist": "playlist",
    "plan": "plan",
    "subscriptionplan": "plan",
    "passplan": "pass_plan",
}
_LABEL = {kind: kind.replace("_", " ") for kind in ENTITLEMENT_KINDS}


@dataclass(frozen=True)
class Checked:
    """Valid records (quantity rows expanded, input order) and one issue per invalid row."""

    records: list[Record]
    issues: list[RowIssue]
    rows: int


def generated_key(fingerprint: str, occurrence: int, n: int) -> str:
    """``gen:<16 hex of sha256(fingerprint)>:<occurrence>:<n>`` for a code-less row's n-th code.

    *fingerprint* is ``expiration_date|kind|entitlement_id`` (:attr:`Record.fingerprint`);
    *occurrence* counts the earlier code-less rows of the file with the same content, valid or
    not, so fixing one of them does not move the others' codes; *n* is the index within the
    quantity, which is not hashed: raising a quantity from 10 to 12 keeps the first ten codes.
    """
    return f"gen:{_digest(fingerprint)}:{occurrence}:{n}"


def _digest(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


class _Rules:
    """The sheet's columns as object arrays, and the first issue found for each row."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.size = len(frame)
        self.issue = _filled(self.size, "")
        self.column = _filled(self.size, "")
        self.ok = np.ones(self.size, dtype=bool)
        self._cells: dict[str, np.ndarray] = {}

    def cells(self, name: str) -> np.ndarray:
        """A column as an object array of str; all ``""`` when the sheet lacks it."""
        if name not in self._cells:
            if name in self.frame:
                self._cells[name] = self.frame[name].to_numpy(dtype=object)
            else:
                self._cells[name] = _filled(self.size, "")
        return self._cells[name]

    def flag(self, mask: np.ndarray, issue: str, column: str | np.ndarray) -> None:
        """Give *issue* to the rows in *mask* that have none yet: the first failing rule wins."""
        new = mask & self.ok
        self.ok &= ~mask
        self.issue[new] = issue
        self.column[new] = column if isinstance(column, str) else column[new]


def validate(sheet: Sheet, config: InputConfig, today: date) -> Checked:
    """Apply every rule to *sheet*; see the module docstring for the rules and their order."""
    rules = _Rules(sheet.frame)
    size = rules.size
    rows = sheet.frame["row"].to_numpy(dtype=np.int64)
    code, has_code, code_key, duplicate = _code_rules(rules, config)

    expires_raw = rules.cells("expiration_date")
    expires, parsed, serial = _parse_dates(expires_raw, config.dayfirst)
    rules.flag(expires_raw == "", "missing-expiration", "expiration_date")
    rules.flag(serial, "date-as-number", "expiration_date")
    rules.flag(~parsed, "bad-expiration", "expiration_date")
    rules.flag(parsed & (expires < today.isoformat()), "expired", "expiration_date")

    kind, ident, where = _entitlements(rules)
    # A column of few distinct values (a batch of codes for one video): each checked once.
    which, distinct = pd.factorize(ident)
    distinct = np.asarray(distinct, dtype=object)
    rules.flag(~_matches(_HEX_ID, distinct)[which], "bad-entitlement-id", where)

    quantity_raw = rules.cells("quantity")
    quantity = np.ones(size, dtype=np.int64)
    given = np.flatnonzero(quantity_raw != "")
    quantity[given] = [_whole(text) for text in quantity_raw[given]]
    rules.flag((quantity < 1) | (quantity > config.max_quantity), "bad-quantity", "quantity")
    rules.flag(has_code & (quantity > 1), "quantity-with-code", "quantity")

    first_row = _first_rows(code_key, rows, duplicate)
    facts = {"expires": expires, "kind": kind, "ident": ident}
    issues = [
        RowIssue(
            row=int(rows[i]),
            code=rules.issue[i],
            column=rules.column[i],
            message=_message(rules, facts, i, config, first_row),
            value=code[i],
        )
        for i in np.flatnonzero(~rules.ok).tolist()
    ]
    # Ids are sent lower-case; most already are, and those keep their string object.
    ident = np.array([v if v.islower() else v.lower() for v in distinct], dtype=object)[which]
    records = _records(rules, rows, code, code_key, expires, kind, ident, quantity)
    return Checked(records=records, issues=issues, rows=size)


def validate_codes(sheet: Sheet, config: InputConfig) -> Checked:
    """A list of codes (``revoke``): the code rules alone, and ``missing-code`` for a line that
    has text only in an ignored column. Records carry the code and its key (``code:<CODE>``),
    no date or entitlement."""
    rules = _Rules(sheet.frame)
    rows = sheet.frame["row"].to_numpy(dtype=np.int64)
    code, has_code, code_key, duplicate = _code_rules(rules, config)
    rules.flag(~has_code, "missing-code", "code")
    first_row = _first_rows(code_key, rows, duplicate)
    issues = [
        RowIssue(
            row=int(rows[i]),
            code=rules.issue[i],
            column=rules.column[i],
            message=_message(
                rules, dict.fromkeys(("expires", "kind", "ident"), code), i, config, first_row
            ),
            value=code[i],
        )
        for i in np.flatnonzero(~rules.ok).tolist()
    ]
    valid = np.flatnonzero(rules.ok)
    records = [
        Record(row, key, text, "", "", "")
        for row, key, text in zip(
            rows[valid].tolist(), code_key[valid].tolist(), code[valid].tolist(), strict=True
        )
    ]
    return Checked(records=records, issues=issues, rows=rules.size)


def _code_rules(
    rules: _Rules, config: InputConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The code's rules, flagged in order: its cells, which rows have one, their keys (the
    case-insensitive duplicate test) and which repeat an earlier row's."""
    # A list comprehension over an object array is about 3x faster than the .str accessor.
    code = rules.cells("code")
    size = rules.size
    has_code = code != ""
    bad_chars = has_code & ~_code_chars_only(code)
    # Excel's damage and pasted characters, named before the generic "may only contain".
    odd = np.flatnonzero(bad_chars)
    rules.flag(
        _some(odd, code, lambda c: pasted.invisible(c) is not None), "invisible-character", "code"
    )
    rules.flag(_some(odd, code, damage.lost_digits), "code-lost-digits", "code")
    lengths = np.fromiter(map(len, code), dtype=np.int64, count=size)
    rules.flag(_date_shaped(code, lengths), "code-as-date", "code")
    rules.flag(bad_chars, "bad-code", "code")
    rules.flag(lengths > config.max_code_length, "code-too-long", "code")
    # The record key doubles as the case-insensitive duplicate test: no second copy of codes.
    code_key = np.array(["code:" + c.upper() for c in code], dtype=object)
    duplicate = has_code & pd.Series(code_key, dtype=object).duplicated().to_numpy()
    rules.flag(duplicate, "duplicate-code", "code")
    return code, has_code, code_key, duplicate


def _filled(size: int, value: str) -> np.ndarray:
    """An object array of *size* references to *value*.

    ``np.full(size, "text", dtype=object)`` converts through a numpy string per element: 8x
    slower, and a million separate copies of the text.
    """
    array = np.empty(size, dtype=object)
    array.fill(value)
    return array


def _matches(pattern: re.Pattern[str], values: np.ndarray) -> np.ndarray:
    match = pattern.fullmatch
    return np.fromiter((match(v) is not None for v in values), dtype=bool, count=len(values))


def _code_chars_only(codes: np.ndarray) -> np.ndarray:
    """:data:`_CODE`'s test, the regex only for codes that are not plain ASCII letters and
    digits: ``isascii() and isalnum()`` answers for most codes at a third of a match's cost."""
    match = _CODE.fullmatch
    return np.fromiter(
        ((c.isascii() and c.isalnum()) or match(c) is not None for c in codes),
        dtype=bool,
        count=len(codes),
    )


def _some(rows: np.ndarray, cells: np.ndarray, test: Callable[[str], bool]) -> np.ndarray:
    """A mask of the *rows* (indices, usually few) whose cell passes *test*."""
    mask = np.zeros(len(cells), dtype=bool)
    mask[rows] = [test(cell) for cell in cells[rows]]
    return mask


def _date_shaped(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """:func:`importer.rules.damage.date_shaped` for each code, the pattern tried only on the few
    short enough and holding a ``-`` or ``/`` (a million codes: 0.4 s for all, 0.05 s so)."""
    short = np.flatnonzero((lengths > 0) & (lengths <= damage.LONGEST_DATE))
    some = codes[short]
    dashed = np.fromiter(map(operator.contains, some, itertools.repeat("-")), bool, some.size)
    dashed |= np.fromiter(map(operator.contains, some, itertools.repeat("/")), bool, some.size)
    return _some(short[dashed], codes, damage.date_shaped)


def _whole(text: str) -> int:
    """A quantity cell as a number; 0 (out of range, so invalid) unless it is plain digits.

    ``5.0`` and ``5.00`` are 5: that is how a number cell formatted with decimals comes out of
    a spreadsheet's CSV export.
    """
    digits, point, decimals = text.partition(".")
    if point and (not decimals or decimals.strip("0")):
        return 0
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else 0


def _parse_dates(raw: np.ndarray, dayfirst: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each cell as ``YYYY-MM-DD`` (``""`` if it is not a date), whether it parsed, and whether
    it is a spreadsheet's day number instead (see :func:`importer.rules.damage.serial_date`)."""
    # A sheet holds few distinct dates however long it is: parse each spelling once.
    spellings, distinct = pd.factorize(raw)
    table = np.array([iso_date(text, dayfirst) for text in distinct], dtype=object)
    serial = np.array(
        [
            not iso and bool(damage.serial_date(text))
            for text, iso in zip(distinct, table, strict=True)
        ],
        dtype=bool,
    )
    iso = table[spellings]
    return iso, iso != "", serial[spellings] if len(distinct) else np.zeros(len(raw), dtype=bool)


def _entitlements(rules: _Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flag the entitlement rules; return each row's kind, id and the id's column."""
    size = rules.size
    kind = _filled(size, "")
    ident = _filled(size, "")
    where = _filled(size, "entitlement_id")
    extra = where.copy()  # the last id column filled: the one a second entitlement sits in
    count = np.zeros(size, dtype=np.int64)
    for name in ID_COLUMNS:
        if name not in rules.frame:
            continue
        values = rules.cells(name)
        filled = values != ""
        first = filled & (count == 0)
        kind[first], ident[first], where[first] = name.removesuffix("_id"), values[first], name
        extra[filled] = name
        count += filled
    rules.flag(count > 1, "multiple-entitlements", extra)

    none = count == 0
    has_type = np.zeros(size, dtype=bool)
    if "entitlement_type" in rules.frame or "entitlement_id" in rules.frame:
        type_raw, type_id = rules.cells("entitlement_type"), rules.cells("entitlement_id")
        names = {v: TYPE_NAMES.get(normalise_header(v), "?") if v else "" for v in set(type_raw)}
        type_kind = np.array([names[v] for v in type_raw], dtype=object)
        has_type, has_id = type_raw != "", type_id != ""
        rules.flag(type_kind == "?", "bad-entitlement-type", "entitlement_type")

        # Both forms on one row are fine when they agree, a conflict when they do not.
        one = count == 1
        differs = one & has_type & (type_kind != kind)
        check = np.flatnonzero(one & has_id)
        pairs = zip(type_id[check], ident[check], strict=True)
        differs[check] |= np.fromiter((a.lower() != b.lower() for a, b in pairs), bool, check.size)
        column = _filled(size, "entitlement_id")
        column[has_type & (type_kind != kind)] = "entitlement_type"
        rules.flag(differs, "multiple-entitlements", column)

        by_type = none & has_type & has_id
        kind[by_type], ident[by_type] = type_kind[by_type], type_id[by_type]
        rules.flag(none & has_id & ~has_type, "bad-entitlement-type", "entitlement_type")
        none &= ~has_id
    present = [c for c in ID_COLUMNS if c in rules.frame]
    column = _filled(size, present[0] if present else "entitlement_id")
    column[has_type] = "entitlement_id"
    rules.flag(none, "missing-entitlement", column)
    return kind, ident, where


def _first_rows(keys: np.ndarray, rows: np.ndarray, duplicate: np.ndarray) -> dict[str, int]:
    """Code key -> the row of its first occurrence, for the codes that repeat."""
    wanted = set(keys[duplicate])
    first: dict[str, int] = {}
    if wanted:
        for value, row in zip(keys, rows, strict=True):
            if value in wanted and value not in first:
                first[value] = int(row)
    return first


_TEMPLATES = {
    "bad-code": "code '{code}' may only contain letters, digits, - and _",
    "code-lost-digits": (
        "code '{code}' is a number Excel shortened to scientific notation, and its other"
        " digits are lost: format the code column as Text in Excel, enter the codes again"
        " and export again"
    ),
    "code-as-date": (
        "code '{code}' is a date that Excel made of the code (it does so to codes such as"
        " SEP2 or 1-2): format the code column as Text in Excel, enter the codes again and"
        " export again"
    ),
    "code-too-long": "code is {length} characters long; the limit is {config.max_code_length}",
    "duplicate-code": "duplicate of row {first}",
    "missing-code": "no code on this line",
    "missing-expiration": "no expiration date",
    "expired": "expiration date {expires} has passed",
    "bad-entitlement-id": "{label} id '{ident}' is not a 24-character Zype id",
    "bad-quantity": "quantity '{quantity}' is not a whole number from 1 to {config.max_quantity}",
    "quantity-with-code": (
        "a row with a code creates one code; leave the code empty to generate {quantity}"
    ),
}


def _message(
    rules: _Rules, facts: dict[str, np.ndarray], i: int, config: InputConfig, first: dict[str, int]
) -> str:
    """The sentence a marketer reads for row *i*'s issue."""
    issue, code = rules.issue[i], rules.cells("code")[i]
    if issue == "bad-entitlement-id" and pasted.looks_like_address(facts["ident"][i]):
        return _address(facts["ident"][i], _LABEL.get(facts["kind"][i], "entitlement"))
    if issue in _TEMPLATES:
        return _TEMPLATES[issue].format(
            code=code,
            length=len(code),
            config=config,
            first=first.get("code:" + code.upper()),
            expires=facts["expires"][i],
            label=_LABEL.get(facts["kind"][i], "entitlement"),
            ident=facts["ident"][i],
            quantity=rules.cells("quantity")[i],
        )
    if issue == "invisible-character":
        return _invisible(code)
    if issue == "bad-expiration":
        raw = rules.cells("expiration_date")[i]
        return f"expiration date '{raw}' is not a date{why_not(raw, config.dayfirst)}"
    if issue == "date-as-number":
        raw = rules.cells("expiration_date")[i]
        return (
            f"expiration date '{raw}' is the number a spreadsheet stores for"
            f" {damage.serial_date(raw)}, not a date: the column was saved as numbers; format"
            " it as a date and export again"
        )
    type_raw, type_id = rules.cells("entitlement_type")[i], rules.cells("entitlement_id")[i]
    if issue == "bad-entitlement-type" and type_raw:
        return f"entitlement type '{type_raw}' is not one of video, playlist, plan, pass plan"
    if issue == "bad-entitlement-type":
        return f"entitlement id '{type_id}' has no entitlement type"
    if issue == "missing-entitlement" and type_raw:
        return f"entitlement type '{type_raw}' has no entitlement id"
    if issue == "missing-entitlement":
        return "names no video, playlist, plan or pass plan"
    named = [f"{_LABEL[c.removesuffix('_id')]} {v}" for c in ID_COLUMNS if (v := rules.cells(c)[i])]
    if type_raw and type_id:
        named.append(f"{type_raw} {type_id}")
    elif type_raw or type_id:
        named.append(f"entitlement type '{type_raw}'" if type_raw else f"entitlement id {type_id}")
    return "names more than one entitlement: " + ", ".join(named)


def _address(address: str, label: str) -> str:
    """Why a web address in an id column was not read as an id."""
    shown = address.split("?")[0]  # the query may hold an API key: never shown
    named = pasted.address_kind(address) if pasted.zype_id(address) else None
    if named is not None and _LABEL[named] != label:
        return (
            f"{label} id '{shown}' is the address of a {_LABEL[named]}, not of a {label}:"
            f" check the row, or move it to the {_LABEL[named]} column"
        )
    return (
        f"{label} id '{shown}' is a web address, not a Zype id: copy the 24-character id from"
        " it (an address of Zype's holding exactly one id is read as that id)"
    )


def _invisible(code: str) -> str:
    """Where the invisible character in *code* sits, and what it is."""
    found = pasted.invisible(code)
    position, name = found if found is not None else (0, "unknown")
    where = f"after '{code[:position]}'" if position else "at the start"
    return (
        f"code '{code}' has an invisible character ({name}) {where}, pasted with it from"
        " an e-mail or a web page: delete it or type the code again"
    )


def _records(
    rules: _Rules,
    rows: np.ndarray,
    code: np.ndarray,
    code_key: np.ndarray,
    expires: np.ndarray,
    kind: np.ndarray,
    ident: np.ndarray,
    quantity: np.ndarray,
) -> list[Record]:
    """The valid rows as records, in order, each code-less row expanded into its quantity."""
    generated = code == ""
    valid = np.flatnonzero(rules.ok)
    counts = np.where(generated[valid], quantity[valid], 1)
    take = valid.repeat(counts)
    keys = code_key[take]
    mine = np.flatnonzero(generated)
    if mine.size:
        content = [
            f"{e}|{k}|{d}" for e, k, d in zip(expires[mine], kind[mine], ident[mine], strict=True)
        ]
        occurrence = _occurrences(rules, mine, content)
        sha256 = hashlib.sha256
        prefix = _filled(rules.size, "")
        # The same as generated_key() without the code's number, inlined for speed.
        prefix[mine] = [
            f"gen:{sha256(text.encode()).hexdigest()[:16]}:{seen}:" if ok else ""
            for text, seen, ok in zip(content, occurrence, rules.ok[mine].tolist(), strict=True)
        ]
        del content
        # Code n of a quantity row: its position among the row's copies.
        nth = np.arange(take.size) - (np.cumsum(counts) - counts).repeat(counts)
        out = np.flatnonzero(generated[take])
        keys[out] = [f"{p}{n}" for p, n in zip(prefix[take[out]], nth[out].tolist(), strict=True)]
    fields = (
        rows[take].tolist(),
        keys.tolist(),
        code[take].tolist(),
        expires[take].tolist(),
        kind[take].tolist(),
        ident[take].tolist(),
        generated[take].tolist(),
    )
    return _construct(fields)


_FIELDS = tuple(field.name for field in dataclasses.fields(Record))
#: Record's generated __init__ only assigns its fields; filling the slots column by column
#: does the same at about twice the speed (0.5 s instead of 1.2 s for a million records).
_FAST = hasattr(Record, "__slots__") and not hasattr(Record, "__post_init__")


def _construct(fields: tuple[list[object], ...]) -> list[Record]:
    """``[Record(*values) for values in zip(*fields)]``, built fast; *fields* in field order."""
    # A million new objects would also set off repeated full garbage collections; records
    # hold only strings, ints and bools, so pausing the collector is safe.
    paused = gc.isenabled()
    gc.disable()
    try:
        if not _FAST:
            return list(itertools.starmap(Record, zip(*fields, strict=True)))
        records = list(map(Record.__new__, itertools.repeat(Record, len(fields[0]))))
        for name, values in zip(_FIELDS, fields, strict=True):
            # The slot's own descriptor sets the value once, bypassing the frozen __setattr__.
            collections.deque(map(getattr(Record, name).__set__, records, values), maxlen=0)
        return records
    finally:
        if paused:
            gc.enable()


def _occurrences(rules: _Rules, mine: np.ndarray, content: list[str]) -> list[int]:
    """For the code-less rows *mine*: how many earlier code-less rows have the same content.

    Rows are told apart by their order among identical rows only, so a row inserted elsewhere
    does not move their codes. Invalid rows count too, by their raw cells (or their content
    when only the quantity is wrong), so fixing one later does not shift the rows after it.
    """
    raw = np.flatnonzero(~rules.ok[mine] & (rules.issue[mine] != "bad-quantity"))
    if raw.size:
        names = ["expiration_date", *ID_COLUMNS, "entitlement_type", "entitlement_id"]
        cells = zip(*(rules.cells(name)[mine[raw]] for name in names), strict=True)
        content = content.copy()
        for j, row in zip(raw, cells, strict=True):
            content[j] = "\x1f".join(row)
    groups, uniques = pd.factorize(np.array(content, dtype=object))
    if len(uniques) == len(content):  # the usual case: no two code-less rows alike
        return [0] * len(content)
    return pd.Series(groups).groupby(groups, sort=False).cumcount().tolist()
