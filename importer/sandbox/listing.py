"""Listing codes: the filters of ``GET /redemption_codes`` and its pages.

Listing takes the filters NOTES.md documents, all ANDed: ``code`` (whole code,
case-insensitive), ``id``, ``id!`` (all but that id), ``video_id``, ``playlist_id``, ``plan_id``,
``pass_plan_id``, ``transaction_id`` (equality), ``q`` (a case-insensitive substring of the code
or the content title: **assumed**), and ``created_at``, ``updated_at``, ``expiration_date``,
``redeemed_at``, each bare or with ``.gt``, ``.gte``, ``.lt``, ``.lte``. A date value is an
instant as of midnight at its start in the account's zone (UTC-5), so
``created_at.lte=2031-01-01`` ends at ``2031-01-01T00:00:00-05:00``; an ISO 8601 timestamp with an
offset is that instant, one without is read in the account's zone; a code whose field is null
(``redeemed_at`` before redemption) matches no date filter. A bare date field matches the whole
day for a date and exactly that instant (to the millisecond) for a timestamp. An unreadable value
or an unknown suffix is a 422. Pages come in creation order; ``per_page`` is at most 100
(more is cut to 100), 10 by default; ``pagination.next`` is null on the last page. Other
parameters (``order``, ``sort``, ...) are ignored. List filters cost O(codes) per call.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta

from importer.sandbox.objects import _YMD, Code, parse_instant, stamp
from importer.sandbox.state import SandboxState

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10

#: The list filters that are plain equality on the field of the same name.
EXACT_FILTERS = ("video_id", "playlist_id", "plan_id", "pass_plan_id", "transaction_id")
#: The timestamp fields a list can filter on, bare or with a suffix of :data:`_COMPARE`.
DATE_FIELDS = ("created_at", "updated_at", "expiration_date", "redeemed_at")

# Every stored timestamp has one shape and one offset (see stamp()), so string order is time order.
_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

Test = Callable[[Code], bool]


def _equals(name: str, value: str) -> Test:
    return lambda obj: obj[name] == value


def _differs(name: str, value: str) -> Test:
    return lambda obj: obj[name] != value


def _same_code(code: str) -> Test:
    folded = code.casefold()
    return lambda obj: obj["code"].casefold() == folded


def _mentions(word: str) -> Test:
    folded = word.casefold()
    return lambda obj: folded in obj["code"].casefold() or folded in obj["content_title"].casefold()


def _time_test(key: str, value: str) -> Test:
    """The test for a date filter `key` (``created_at``, ``created_at.gte``, ...); ValueError."""
    name, _, suffix = key.partition(".")
    compare = _COMPARE.get(suffix)
    if suffix and compare is None:
        raise ValueError(f"Unknown filter {key}: {name} takes .gt, .gte, .lt or .lte")
    whole_day = not suffix and _YMD.fullmatch(value) is not None
    try:
        moment = parse_instant(value)
        bound = stamp(moment)
        end = stamp(moment + timedelta(days=1)) if whole_day else bound
    except (ValueError, OverflowError):
        raise ValueError(
            f"{key} must be a date (YYYY-MM-DD) or an ISO 8601 timestamp, got {value!r}"
        ) from None
    if compare is not None:
        return lambda obj: obj[name] is not None and compare(obj[name], bound)
    if whole_day:
        return lambda obj: obj[name] is not None and bound <= obj[name] < end
    return lambda obj: obj[name] == bound


def select(state: SandboxState, query: Iterable[tuple[str, str]]) -> list[Code]:
    """The codes the list filters in `query` (name, value pairs) select, in creation order.

    ValueError, with the 422's message, for an unreadable value or an unknown date suffix.
    Parameters that are not filters (``page``, ``api_key``, ``order``, ...) are ignored.
    """
    tests: list[Test] = []
    candidates: Iterable[Code] = state.ordered()
    for key, value in query:
        if key in EXACT_FILTERS:
            tests.append(_equals(key, value))
        elif key == "id":
            found = state.find_id(value)
            # An id names at most one code: no need to walk them all.
            candidates = [] if found is None else [found]
            tests.append(_equals("_id", value))
        elif key == "id!":
            tests.append(_differs("_id", value))
        elif key == "code":
            found = state.find_code(value)
            candidates = [] if found is None else [found]
            tests.append(_same_code(value))
        elif key == "q":
            tests.append(_mentions(value))
        elif key.partition(".")[0] in DATE_FIELDS:
            tests.append(_time_test(key, value))
    return [obj for obj in candidates if all(test(obj) for test in tests)]


def page_of(
    state: SandboxState, query: Mapping[str, str]
) -> tuple[list[Code], dict[str, int | None]]:
    """The codes on the page `query` asks for, and the answer's ``pagination`` object.

    ValueError, with the 422's message, for a page or ``per_page`` that is not a whole number
    from 1, and as :func:`select` raises it.
    """
    try:
        page = int(query.get("page", "1"))
        per_page = min(int(query.get("per_page", str(DEFAULT_PER_PAGE))), MAX_PER_PAGE)
    except ValueError:
        raise ValueError("page and per_page must be whole numbers") from None
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page must be at least 1")
    matches = select(state, query.items())
    pages = math.ceil(len(matches) / per_page)
    start = (page - 1) * per_page
    pagination = {
        "current": page,
        "previous": page - 1 if page > 1 else None,
        "next": page + 1 if page < pages else None,
        "per_page": per_page,
        "pages": pages,
    }
    return matches[start : start + per_page], pagination
