"""Zype's wire format for redemption codes: the requests, and what their answers mean.

Everything the importer knows about the API's paths, bodies, answers and pagination is here
(``api/NOTES.md`` is the source); the operations in :mod:`importer.api.ops` build requests with
these functions and read answers with them, and :mod:`importer.api.http` carries them. Nothing here
does I/O.

Every non-success answer goes through :func:`raise_for`, one table for every request::

    401/403 ─────────────> AuthError (the run stops, nothing more is sent)
    429 ─────────────────> RateLimitedError (Retry-After honoured)
    5xx ─────────────────> ServerError (may have been applied)
    3xx ─────────────────> ApiUnavailableError (api.url is wrong; a write must never follow it)
    4xx, not the API's ──> ApiUnavailableError (an HTML page, or no ``{"message": ...}``: the
                           server is not Zype's API, so its answer is no verdict on a row)
    other 4xx ───────────> RejectedError, with the API's message
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote

import orjson

from importer.errors import (
    ApiUnavailableError,
    AuthError,
    RateLimitedError,
    RejectedError,
    ServerError,
)
from importer.models import ENTITLEMENT_KINDS, Record, entitlement_field

#: The collection every call is made on, relative to ``api.url``.
COLLECTION = "/redemption_codes"
#: The most a list page holds (NOTES: ``per_page`` at most 100).
PER_PAGE = 100
#: The longest pause one ``Retry-After`` may impose, so a bogus date cannot stall a run for good.
MAX_RETRY_AFTER = 600.0

_DELAY_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_YMD = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEX24 = re.compile(r"[0-9a-fA-F]{24}")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, relative to the collection: ``path`` is ``""`` or ``"/<id>"``."""

    method: str
    path: str = ""
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @property
    def writes(self) -> bool:
        """Whether the request may change what the API holds (everything but GET)."""
        return self.method != "GET"

    def describe(self) -> str:
        """``POST /redemption_codes``: for messages (never with the query, which holds the key)."""
        return f"{self.method} {COLLECTION}{self.path}"


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, reduced to what the importer decides on.

    `body` is the parsed JSON, or for a body that is not JSON (an error page) its first 200
    characters as a string, or None when empty.
    """

    status: int
    body: Any
    retry_after: str | None = None
    #: The answer's rate-limit headers (``X-RateLimit-*``, ``RateLimit-*``, ``RateLimit``), names
    #: in lower case; empty when it sent none, as Zype's answers are known to.
    limits: tuple[tuple[str, str], ...] = ()


# --- requests ------------------------------------------------------------------------------------


def _body(record: Record) -> bytes:
    # orjson: under a tenth of the standard library's cost for a body this size, compact.
    return orjson.dumps(record.payload())


def create(record: Record) -> Request:
    """``POST /redemption_codes`` with the record's code, date and entitlement."""
    return Request("POST", body=_body(record))


def update(api_id: str, record: Record) -> Request:
    """``PUT /redemption_codes/{id}``: the code gets the record's date and entitlement.

    The body names all four entitlement fields, the three unused ones empty, so a code moved
    from a video to a plan does not keep its video as well.
    """
    fields: dict[str, str] = {"code": record.code, "expiration_date": record.expiration_date}
    for kind in ENTITLEMENT_KINDS:
        fields[entitlement_field(kind)] = record.entitlement_id if kind == record.kind else ""
    return Request("PUT", _one(api_id), body=orjson.dumps({"redemption_code": fields}))


def delete(api_id: str) -> Request:
    """``DELETE /redemption_codes/{id}``."""
    return Request("DELETE", _one(api_id))


def get(api_id: str) -> Request:
    """``GET /redemption_codes/{id}``: one code by id."""
    return Request("GET", _one(api_id))


def find(code: str) -> Request:
    """``GET /redemption_codes?code=...``: the codes whose string is *code*."""
    return Request("GET", params=(("code", code), ("per_page", str(PER_PAGE))))


def page(filters: Sequence[tuple[str, str]], number: int) -> Request:
    """One page of ``GET /redemption_codes`` with *filters* (``("created_at.gte", "...")``)."""
    return Request("GET", params=(*filters, ("page", str(number)), ("per_page", str(PER_PAGE))))


#: The cheapest call that proves ``api.url`` is the API and the key may read: one short page.
PROBE = Request("GET", params=(("page", "1"), ("per_page", "1")))


def _one(api_id: str) -> str:
    # An id only ever comes from the API's own answers; quoted all the same, so that no value
    # could turn into another path.
    return "/" + quote(api_id, safe="")


# --- answers -------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from *now* (wall clock): delay-seconds or an HTTP date.

    None when absent or unreadable; otherwise between 0 and :data:`MAX_RETRY_AFTER`.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are always GMT ("-0000" parses as naive)
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def message(answer: Answer) -> str:
    """The API's ``message``, else the text of an error page, else ``HTTP <status>``."""
    body = answer.body
    text = body.get("message") if isinstance(body, dict) else None
    if isinstance(text, str):
        return text
    if isinstance(body, str) and body.strip():
        return body.strip()
    return f"HTTP {answer.status}"


def speaks_zype(answer: Answer) -> bool:
    """Whether an error answer is shaped like the API's own: ``{"message": "<text>"}``."""
    return isinstance(answer.body, dict) and isinstance(answer.body.get("message"), str)


def is_refusal(answer: Answer) -> bool:
    """A 4xx in the API's format that is about the request, not the key or the rate (what
    :func:`raise_for` turns into :class:`RejectedError`)."""
    status = answer.status
    return 400 <= status < 500 and status not in (401, 403, 429) and speaks_zype(answer)


def raise_for(answer: Answer, request: Request) -> None:
    """Raise the project's error for a non-2xx answer (the table in the module docstring)."""
    status = answer.status
    text = message(answer)
    if status in (401, 403):
        raise AuthError(f"the API refused the key (HTTP {status}: {text})")
    if status == 429:
        raise RateLimitedError(text, retry_after=parse_retry_after(answer.retry_after))
    if status >= 500:
        raise ServerError(text, http_status=status)
    if status < 400:
        raise ApiUnavailableError(
            f"{request.describe()} answered HTTP {status} (a redirect?): check api.url"
        )
    if not speaks_zype(answer):
        raise ApiUnavailableError(
            f"{request.describe()} answered HTTP {status} with {_shape(answer)}, not the API's"
            " error format: api.url does not point at Zype's API"
        )
    raise RejectedError(text, http_status=status)


def _shape(answer: Answer) -> str:
    if answer.body is None:
        return "an empty body"
    if isinstance(answer.body, str):
        return "a page that is not JSON"
    return "JSON without a message"


def code_object(answer: Answer) -> dict[str, Any] | None:
    """The code object of a 2xx answer (``{"response": {...}}`` with an ``_id``), else None."""
    body = answer.body.get("response") if isinstance(answer.body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("_id"), str) and body["_id"]:
        return body
    return None


def code_list(answer: Answer) -> tuple[list[dict[str, Any]], int | None] | None:
    """The items and the next page number of a list answer; None if it is not a list answer.

    The next page is ``pagination.next`` (NOTES: follow it until null; ``pages`` is not
    trusted). A ``next`` that is not a number ends the listing.
    """
    body = answer.body
    items = body.get("response") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return None
    pagination = body.get("pagination") if isinstance(body, dict) else None
    following = pagination.get("next") if isinstance(pagination, dict) else None
    if isinstance(following, bool) or not isinstance(following, int):
        following = None
    return [item for item in items if isinstance(item, dict)], following


@dataclass(frozen=True, slots=True)
class LiveCode:
    """A code as the API holds it now, reduced to what the importer compares and reports."""

    api_id: str
    code: str
    #: ``YYYY-MM-DD``, the date part of the API's timestamp (midnight in the account's zone).
    expiration_date: str
    kind: str
    entitlement_id: str
    redeemed: bool
    redeemed_at: str
    expired: bool
    nice_code: str = ""
    #: The title of what the code unlocks, as Zype names it (``content_title``); "" if absent.
    content_title: str = ""

    @property
    def fingerprint(self) -> str:
        """The same shape as :attr:`importer.models.Record.fingerprint`."""
        return f"{self.expiration_date}|{self.kind}|{self.entitlement_id}"

    def holds(self, record: Record) -> bool:
        """Whether this code holds *record*'s date and entitlement (ids compared in any case)."""
        return (self.expiration_date, self.kind, self.entitlement_id) == (
            record.expiration_date,
            record.kind,
            record.entitlement_id.lower(),
        )

    @property
    def state(self) -> str:
        """``redeemed``, ``expired`` or ``available``: what the audit and undo report."""
        if self.redeemed:
            return "redeemed"
        return "expired" if self.expired else "available"


def live_code(obj: dict[str, Any]) -> LiveCode:
    """A code object as :class:`LiveCode`; reads the flags in both spellings (``redeemed?``)."""
    kind, target = "", ""
    for candidate in ENTITLEMENT_KINDS:
        value = obj.get(entitlement_field(candidate))
        if isinstance(value, str) and value:
            kind, target = candidate, value.lower()
            break
    redeemed_at = obj.get("redeemed_at")
    return LiveCode(
        api_id=str(obj.get("_id") or ""),
        code=str(obj.get("code") or ""),
        expiration_date=date_part(obj.get("expiration_date")),
        kind=kind,
        entitlement_id=target,
        redeemed=_flag(obj, "redeemed") or bool(redeemed_at),
        redeemed_at=str(redeemed_at) if redeemed_at else "",
        expired=_flag(obj, "expired"),
        nice_code=str(obj.get("nice_code") or ""),
        content_title=content_title(obj),
    )


def content_title(obj: dict[str, Any]) -> str:
    """The code object's ``content_title`` (what it unlocks, as Zype names it), stripped; ""
    when absent or not text."""
    title = obj.get("content_title")
    return title.strip() if isinstance(title, str) else ""


def date_part(value: Any) -> str:
    """``2031-12-31`` from ``2031-12-31T00:00:00.000-05:00`` (or a bare date); else ``""``."""
    if isinstance(value, str) and _YMD.match(value):
        return value[:10]
    return ""


def _flag(obj: dict[str, Any], name: str) -> bool:
    value = obj.get(name, obj.get(f"{name}?"))
    if isinstance(value, str):  # the published schema types the flags as strings
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def is_api_id(value: str) -> bool:
    """Whether *value* looks like an id the API gives (a 24-hex MongoDB ObjectId)."""
    return _HEX24.fullmatch(value) is not None


def by_id(items: Iterable[dict[str, Any]]) -> dict[str, LiveCode]:
    """List items as :class:`LiveCode` by ``_id`` (items without one are skipped)."""
    codes = (live_code(item) for item in items)
    return {code.api_id: code for code in codes if code.api_id}
