"""Read what the API holds: the probe before a command writes, list pages, one code by id,
one code by its code string.

Reads change nothing, so a read the engine gives up on cannot be left half-done: it stops the
run (:class:`~importer.errors.ApiUnavailableError`, exit 3) rather than let undo or update act
on a state it could not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from importer.api import wire
from importer.api.engine import Attempt, Steps
from importer.errors import ApiError, ApiUnavailableError, Interrupted, ServerError


class _Reads:
    def gave_up(self, item: object, state: Attempt, error: ApiError) -> NoReturn:
        raise ApiUnavailableError(f"could not read the codes Zype holds: {error.message}")

    def stopped(self, item: object, state: Attempt) -> NoReturn:
        raise Interrupted("stopped while reading the codes Zype holds")


class Probe(_Reads):
    """One short list page: proves that api.url is the API and that the key may read.

    Any answer but a list (a 404, an HTML page, JSON of another shape) means api.url points
    elsewhere, and the command stops before a single write would be judged by it.
    """

    def steps(self, item: str, state: Attempt) -> Steps[bool]:
        """*item* is the API's URL as the message should name it (no key)."""
        request = wire.PROBE
        answer = yield request
        if answer.status == 200 and wire.code_list(answer) is not None:
            return True
        if answer.status in (401, 403, 429) or answer.status >= 500:
            wire.raise_for(answer, request)
        raise ApiUnavailableError(
            f"{item} does not look like Zype's API: GET /redemption_codes answered"
            f" HTTP {answer.status} without a list of codes; check api.url (--api-url)"
        )

    def gave_up(self, item: object, state: Attempt, error: ApiError) -> NoReturn:
        raise ApiUnavailableError(f"cannot reach the API at {item}: {error.message}")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a filtered listing, and what it found."""

    filters: tuple[tuple[str, str], ...]
    number: int = 1


class ListPage(_Reads):
    """``GET /redemption_codes`` with filters: the page's codes by id and the next page."""

    def steps(
        self, item: Page, state: Attempt
    ) -> Steps[tuple[dict[str, wire.LiveCode], int | None]]:
        request = wire.page(item.filters, item.number)
        answer = yield request
        if answer.status == 200:
            listed = wire.code_list(answer)
            if listed is None:
                raise ServerError("a list call answered HTTP 200 without a list", http_status=200)
            items, following = listed
            # A next page that does not move forward would loop for ever.
            if following is not None and following <= item.number:
                following = None
            return wire.by_id(items), following
        wire.raise_for(answer, request)
        raise AssertionError("unreachable")  # pragma: no cover - raise_for raised


class GetOne(_Reads):
    """``GET /redemption_codes/{id}``: the code, or None when the API answers 404 in its format."""

    def steps(self, item: str, state: Attempt) -> Steps[wire.LiveCode | None]:
        request = wire.get(item)
        answer = yield request
        if answer.status == 200:
            obj = wire.code_object(answer)
            if obj is None:
                raise ServerError("HTTP 200 without the code", http_status=200)
            return wire.live_code(obj)
        if answer.status == 404 and wire.is_refusal(answer):
            return None
        wire.raise_for(answer, request)
        raise AssertionError("unreachable")  # pragma: no cover - raise_for raised


class FindCode(_Reads):
    """One code by its code string: ``GET /redemption_codes/{code}``, or None when Zype has none.

    NOTES: that path takes an id or a code, and answers the object itself (one request, no page
    to read through). A code shaped like an id (24 hex characters) could be read there as some
    other code's id, so it, and any answer whose code is not the one asked for, goes through the
    list filter ``?code=`` instead, matched exactly (ignoring case, as Zype's "taken" does).
    """

    def steps(self, item: str, state: Attempt) -> Steps[wire.LiveCode | None]:
        if not wire.is_api_id(item):
            request = wire.get(item)
            answer = yield request
            if answer.status == 200:
                obj = wire.code_object(answer)
                if obj is None:
                    raise ServerError("HTTP 200 without the code", http_status=200)
                live = wire.live_code(obj)
                if live.code.casefold() == item.casefold():
                    return live
            elif answer.status == 404 and wire.is_refusal(answer):
                return None
            else:
                wire.raise_for(answer, request)
        request = wire.find(item)
        answer = yield request
        if answer.status == 200:
            listed = wire.code_list(answer)
            if listed is None:
                raise ServerError("a lookup answered HTTP 200 without a list", http_status=200)
            for live in wire.by_id(listed[0]).values():
                if live.code.casefold() == item.casefold():
                    return live
            return None
        wire.raise_for(answer, request)
        raise AssertionError("unreachable")  # pragma: no cover - raise_for raised


PROBE = Probe()
LIST_PAGE = ListPage()
GET_ONE = GetOne()
FIND_CODE = FindCode()
