"""A local imitation of Zype's redemption-code API, with faults on demand.

It answers the calls the importer makes, the way ``api/NOTES.md`` says Zype answers them, on a
loopback port: ``POST /redemption_codes``, ``GET /redemption_codes`` (filters and pagination),
``GET /redemption_codes/{id_or_code}``, ``PUT`` and ``DELETE /redemption_codes/{id}`` (by ``_id``
only, as documented: a code string there is a 404). Everything else is a 404. Every answer is
JSON; every error body is ``{"message": ...}``.

Authentication: the key comes from the ``api_key`` query parameter or the ``x-zype-key`` header
and must equal the sandbox's key (else 401). :data:`READ_ONLY_KEY` is also accepted, for reading
only: a write with it is a 403.

:class:`Faults` makes it misbehave the way a real API and the proxies in front of it do. They are
applied to every API request, in this order, so each fault is unambiguous about whether the
request took effect:

=========================  =====================================================  ===========
fault                      on the wire (what an aiohttp client sees)               applied?
=========================  =====================================================  ===========
``reset_rate``             TCP RST before any answer: ``aiohttp.ClientOSError``    no
                           (``ECONNRESET``), or ``ServerDisconnectedError``
``rate_limit``             429 ``{"message": "Rate limit exceeded"}``,             no
                           ``Retry-After: 1``
``latency``                the answer comes that many seconds later                (yes)
``error_rate``             503 ``{"message": "Service Unavailable"}``              no
``lost_rate`` (POST, PUT,  handled as usual, then FIN with no answer:              **yes**
DELETE)                    ``aiohttp.ServerDisconnectedError``
=========================  =====================================================  ===========

Faults come before the key is checked (they stand for the network and the proxies in front of
the API), so a request with a wrong key can still be reset, limited or answered 503.
``Faults.old_flag_names`` is no fault but Zype's older dialect: every code object in an answer
spells its flags ``available?``, ``redeemed?``, ``expired?``.

The rate limit is a sliding one-second window over every request that got past it (GETs
included): a request is refused when ``floor(rate_limit)`` requests were admitted in the last
second. Refused requests do not count, so a client that honours ``Retry-After`` gets through.

Listing (``GET /redemption_codes``) takes the filters NOTES.md documents, all ANDed: ``code``
(whole code, case-insensitive), ``id``, ``id!`` (all but that id), ``video_id``, ``playlist_id``,
``plan_id``, ``pass_plan_id``, ``transaction_id`` (equality), ``q`` (a case-insensitive substring
of the code or the content title: **assumed**), and ``created_at``, ``updated_at``,
``expiration_date``, ``redeemed_at``, each bare or with ``.gt``, ``.gte``, ``.lt``, ``.lte``. A
date value is an instant as of midnight at its start in the account's zone (UTC-5), so
``created_at.lte=2031-01-01`` ends at ``2031-01-01T00:00:00-05:00``; an ISO 8601 timestamp with an
offset is that instant, one without is read in the account's zone; a code whose field is null
(``redeemed_at`` before redemption) matches no date filter. A bare date field matches the whole
day for a date and exactly that instant (to the millisecond) for a timestamp. An unreadable value
or an unknown suffix is a 422. Pages come in creation order; ``per_page`` is at most 100
(more is cut to 100), 10 by default; ``pagination.next`` is null on the last page. Other
parameters (``order``, ``sort``, ...) are ignored.

A code object's flags are live: ``expired`` is true once the account's calendar date (UTC-5) is
past the expiration date, ``available`` is ``not redeemed and not expired``; both are recomputed
whenever a code is answered. ``redeemed`` is true exactly when ``redeemed_at`` is set.

:class:`SandboxState` holds the codes and counters so tests can inspect what the server saw.
Codes are unique case-insensitively, so a double create is impossible by construction;
``created_log``, ``updated_log`` and ``deleted_log`` let a test prove that each write happened
exactly once. Its clock (``SandboxState.now``) stamps ``created_at``, ``updated_at`` and
``redeemed_at`` and decides ``expired``; tests replace it.

Acting as the account's admin and customers: :meth:`SandboxState.redeem`,
:meth:`~SandboxState.admin_delete`, :meth:`~SandboxState.admin_change` and
:meth:`~SandboxState.seed_others` (codes of other people on the same site), and the same over
HTTP under the reserved prefix ``/_sandbox/`` (the sandbox key required, as for writes)::

    POST /_sandbox/redeem/{id_or_code}[?at=TIMESTAMP]   200 {"response": code}
    POST /_sandbox/delete/{id_or_code}                  200 {"response": code as it was}
    POST /_sandbox/change/{id_or_code}  body {fields}   200 {"response": code}
    POST /_sandbox/others?count=N[&seed=S][&video_id=ID...]  201 {"response": [codes]}
    GET  /_sandbox/stats                                200 {"response": {counters}}

They are not API traffic: no fault touches them and no counter or ``*_log`` counts them (they go
to ``admin_log``). An unknown code is a 404, a refused change a 422.

Simplifications: lists ignore ``order`` and ``sort``; the account's time zone is a fixed UTC-5
(no daylight saving); timestamps carry milliseconds and filters compare to the millisecond; the
API deletes a redeemed code like any other (refusing that is the client's job).

The handler is kept lean (no logging, constant work per create) because the importer's
benchmarks drive it at about 10,000 requests per second. List filters cost O(codes) per call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import operator
import random
import re
import secrets
import signal
import socket
import string
import struct
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

from aiohttp import web

from importer.faults import Faults

__all__ = [
    "ADMIN_PREFIX",
    "READ_ONLY_KEY",
    "Faults",
    "Sandbox",
    "SandboxState",
    "create_app",
    "parse_instant",
    "peak_in_window",
    "running_sandbox",
    "sandbox_state",
    "select",
    "serve",
    "stamp",
]

#: A key that may read but not write, as a Zype "Read Only" key would.
READ_ONLY_KEY = "read-only"

#: Zype answers timestamps in the account's time zone; the sandbox's account is fixed at UTC-5.
ACCOUNT_TZ = timezone(timedelta(hours=-5))
ACCOUNT_OFFSET = "-05:00"

#: The entitlement fields, with the names Zype uses for them in messages and ``content_type``.
ENTITLEMENTS: dict[str, tuple[str, str]] = {
    "video_id": ("Video", "Video"),
    "playlist_id": ("Playlist", "Playlist"),
    "plan_id": ("Plan", "Plan"),
    "pass_plan_id": ("Pass plan", "PassPlan"),
}

#: An entitlement id that is well formed but names nothing, to exercise "not found".
MISSING_ID = "0" * 24

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10

#: Paths under it are the admin's and customers' doings, not API traffic.
ADMIN_PREFIX = "/_sandbox/"

#: The list filters that are plain equality on the field of the same name.
EXACT_FILTERS = ("video_id", "playlist_id", "plan_id", "pass_plan_id", "transaction_id")
#: The timestamp fields a list can filter on, bare or with a suffix of :data:`_COMPARE`.
DATE_FIELDS = ("created_at", "updated_at", "expiration_date", "redeemed_at")
#: The flags as Zype's older answers spell them.
OLD_FLAG_NAMES = {"available": "available?", "redeemed": "redeemed?", "expired": "expired?"}

# Every stored timestamp has one shape and one offset (see stamp()), so string order is time order.
_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_WRITES = frozenset({"POST", "PUT", "DELETE"})
#: What a create or an update may set; admin_change may also set the rest of _CHANGEABLE.
_CONTENT_FIELDS = frozenset({"code", "expiration_date", *ENTITLEMENTS})
_CHANGEABLE = _CONTENT_FIELDS | {
    "transaction_id",
    "redeemed",
    "redeemed_at",
    "created_at",
    "updated_at",
}
_CODE_ALPHABET = string.ascii_uppercase + string.digits

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_YMD = re.compile(r"\d{4}-\d{2}-\d{2}")
#: SO_LINGER on, timeout 0: closing the socket sends RST instead of FIN.
_LINGER_RST = struct.pack("ii", 1, 0)

Code = dict[str, Any]


def _account_now() -> datetime:
    return datetime.now(ACCOUNT_TZ)


def stamp(moment: datetime) -> str:
    """`moment` as the sandbox writes every timestamp: in the account's zone, to the millisecond.

    For example ``2031-01-01T00:00:00.000-05:00``. One shape and one offset for all of them is
    what lets the list filters compare timestamps as strings. A naive `moment` is a ValueError.
    """
    zone = moment.tzinfo
    if zone is None:
        raise ValueError(f"a timestamp needs a time zone, got the naive {moment.isoformat()}")
    if zone is not ACCOUNT_TZ:  # the default clock's; skipping the conversion is cheaper
        moment = moment.astimezone(ACCOUNT_TZ)
    return moment.isoformat(timespec="milliseconds")


def parse_instant(value: str) -> datetime:
    """A filter's or the admin's time: ``YYYY-MM-DD`` (midnight at its start in the account's
    zone) or ISO 8601 (read in the account's zone when it has no offset). ValueError otherwise.
    """
    try:
        if _YMD.fullmatch(value):
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=ACCOUNT_TZ)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date or an ISO 8601 timestamp: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ACCOUNT_TZ)


class _Content(NamedTuple):
    """What a create or an update sets, validated."""

    code: str
    expiration: str  # YYYY-MM-DD
    kind: str  # one of ENTITLEMENTS
    target: str  # a 24-hex id


def _check(fields: Mapping[str, Any]) -> tuple[str, _Content | None]:
    """Validate a ``redemption_code`` body: ``("", content)`` or ``(message, None)``."""
    code = fields.get("code")
    if not isinstance(code, str) or not code.strip():
        return "Code can't be blank", None
    expiration = fields.get("expiration_date")
    if not isinstance(expiration, str) or not expiration:
        return "Expiration date can't be blank", None
    try:
        # The regex first: fromisoformat alone also takes 20300115 and 2030-W03-2.
        expires = date.fromisoformat(expiration) if _YMD.fullmatch(expiration) else None
    except ValueError:
        expires = None
    if expires is None:
        return "Expiration date is invalid (expected YYYY-MM-DD)", None
    # Rails treats "" like a missing value, so an empty id is no entitlement at all.
    given = [name for name in ENTITLEMENTS if fields.get(name) not in (None, "")]
    if not given:
        return "Video, playlist, plan or pass plan can't be blank", None
    if len(given) > 1:
        return "Only one of video, playlist, plan or pass plan may be given", None
    kind = given[0]
    label = ENTITLEMENTS[kind][0]
    target = fields[kind]
    if not isinstance(target, str) or not _HEX24.fullmatch(target):
        return f"{label} id is invalid", None
    if target == MISSING_ID:
        return f"{label} not found", None
    return "", _Content(code, expiration, kind, target)


def _content_fields(content: _Content) -> Code:
    """The code object's fields that follow from `content`."""
    code, kind, target = content.code, content.kind, content.target
    label, content_type = ENTITLEMENTS[kind]
    return {
        "code": code,
        "nice_code": "-".join(code[i : i + 4] for i in range(0, len(code), 4)),
        "content_title": f"Sandbox {label.lower()} {target[-6:]}",
        "content_type": content_type,
        # Midnight at the start of that day in the account's zone, as Zype answers it.
        "expiration_date": f"{content.expiration}T00:00:00.000{ACCOUNT_OFFSET}",
        **{other: target if other == kind else None for other in ENTITLEMENTS},
    }


def _new_code(content: _Content, object_id: str, site_id: str, now: datetime) -> Code:
    """A fresh, unredeemed code object created at `now`."""
    created = stamp(now)
    expired = content.expiration < created[:10]
    code, kind, target = content.code, content.kind, content.target
    label, content_type = ENTITLEMENTS[kind]
    # The fields of _content_fields() written out: one dict literal is cheaper at bench rates.
    return {
        "_id": object_id,
        "code": code,
        "nice_code": "-".join(code[i : i + 4] for i in range(0, len(code), 4)),
        "content_title": f"Sandbox {label.lower()} {target[-6:]}",
        "content_type": content_type,
        "expiration_date": f"{content.expiration}T00:00:00.000{ACCOUNT_OFFSET}",
        "video_id": target if kind == "video_id" else None,
        "playlist_id": target if kind == "playlist_id" else None,
        "plan_id": target if kind == "plan_id" else None,
        "pass_plan_id": target if kind == "pass_plan_id" else None,
        "transaction_id": None,
        "redeemed_at": None,
        "site_id": site_id,
        "created_at": created,
        "updated_at": created,
        "available": not expired,
        "redeemed": False,
        "expired": expired,
    }


def _refresh(obj: Code, today: str) -> None:
    """Recompute `obj`'s derived flags as of the account-local date `today` (YYYY-MM-DD)."""
    expired = obj["expiration_date"][:10] < today
    obj["expired"] = expired
    obj["available"] = not expired and not obj["redeemed"]


def _old_spelling(obj: Code) -> Code:
    return {OLD_FLAG_NAMES.get(key, key): value for key, value in obj.items()}


def _same(obj: Code) -> Code:
    return obj


@dataclass
class SandboxState:
    """What the server holds and has seen. Tests read it; the server and the admin methods below
    write it.

    ``codes`` maps each code, exactly as created (or as last changed), to its code object.
    ``posts``, ``gets``, ``puts`` and ``deletes`` count API requests by method (faulted ones
    included); ``created_log`` lists the codes the API created, ``updated_log`` and
    ``deleted_log`` the ``_id`` of each successful PUT and DELETE, so a test can prove each
    happened exactly once. ``admin_log`` lists ``(action, _id)`` for what the admin and customers
    did (``"redeem"``, ``"delete"``, ``"change"``, ``"others"``); none of it is API traffic.
    ``per_second`` counts requests by ``int(time.monotonic())`` second of arrival (429s and
    injected faults included); ``arrivals`` and ``admitted`` are the monotonic arrival times of
    every request and of those the rate limiter let through, for :func:`peak_in_window`.
    ``faults_injected`` counts resets, 503s and lost answers (429s are in ``rejected_429``).
    ``now`` is the clock for ``created_at``, ``updated_at``, ``redeemed_at`` and ``expired``: it
    must return aware datetimes.
    """

    codes: dict[str, Code] = field(default_factory=dict)
    requests: int = 0
    posts: int = 0
    gets: int = 0
    puts: int = 0
    deletes: int = 0
    rejected_429: int = 0
    faults_injected: int = 0
    per_second: collections.Counter[int] = field(default_factory=collections.Counter)
    created_log: list[str] = field(default_factory=list)
    updated_log: list[str] = field(default_factory=list)
    deleted_log: list[str] = field(default_factory=list)
    admin_log: list[tuple[str, str]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    admitted: list[float] = field(default_factory=list)
    now: Callable[[], datetime] = field(default=_account_now, repr=False)
    site_id: str = field(default_factory=lambda: secrets.token_hex(12))
    # Indexes that keep lookups O(1) at benchmark rates: lower-cased code -> code, and
    # _id -> code object, the latter in creation order for lists.
    _by_folded: dict[str, str] = field(default_factory=dict, repr=False)
    _by_id: dict[str, Code] = field(default_factory=dict, repr=False)

    # --- lookups ---

    def find(self, id_or_code: str) -> Code | None:
        """The code object with this ``_id``, or with this code (case-insensitive), or None."""
        return self._by_id.get(id_or_code) or self.find_code(id_or_code)

    def find_id(self, object_id: str) -> Code | None:
        """The code object with this ``_id``, or None."""
        return self._by_id.get(object_id)

    def find_code(self, code: str) -> Code | None:
        """The code object whose code equals `code` case-insensitively, or None."""
        exact = self._by_folded.get(code.casefold())
        return None if exact is None else self.codes[exact]

    def ordered(self) -> ValuesView[Code]:
        """Every code object, in creation order."""
        return self._by_id.values()

    def today(self) -> str:
        """The account-local date by :attr:`now`, as ``YYYY-MM-DD``."""
        return stamp(self.now())[:10]

    # --- what the API does ---

    def add(self, obj: Code) -> None:
        """Store a code object the API created; ValueError if its code is taken (in any case)."""
        self._store(obj)
        self.created_log.append(obj["code"])

    def remove(self, obj: Code) -> None:
        """Forget a stored code object (the logs keep its history)."""
        del self.codes[obj["code"]]
        del self._by_folded[obj["code"].casefold()]
        del self._by_id[obj["_id"]]

    def edit(self, obj: Code, fields: Mapping[str, Any]) -> str:
        """Apply an update body's `fields` to `obj`, as a PUT does; "" or the 422's message.

        Fields given replace the stored ones; an entitlement given clears the other three. The
        result is validated like a create, and a new code must not be taken by another code in
        any case. Nothing changes unless everything is valid; then ``updated_at`` is bumped.
        """
        base: dict[str, Any] = {
            "code": obj["code"],
            "expiration_date": obj["expiration_date"][:10],
        }
        if not any(fields.get(name) not in (None, "") for name in ENTITLEMENTS):
            base.update((name, obj[name]) for name in ENTITLEMENTS)
        problem, content = _check({**base, **fields})
        if content is None:
            return problem
        holder = self.find_code(content.code)
        if holder is not None and holder is not obj:
            return "Code has already been taken"
        if content.code != obj["code"]:
            del self.codes[obj["code"]]
            del self._by_folded[obj["code"].casefold()]
            self.codes[content.code] = obj
            self._by_folded[content.code.casefold()] = content.code
        obj.update(_content_fields(content))
        now = self.now()
        obj["updated_at"] = stamp(now)
        _refresh(obj, stamp(now)[:10])
        return ""

    # --- what the account's admin and customers do (never counted as API traffic) ---

    def redeem(self, id_or_code: str, when: datetime | None = None) -> Code:
        """A customer redeems the code (by ``_id`` or code) at `when` (default: now).

        KeyError if there is no such code; ValueError if it is already redeemed or had expired
        by `when`.
        """
        obj = self._require(id_or_code)
        now = self.now()
        redeemed_at = stamp(when if when is not None else now)
        if obj["redeemed"]:
            raise ValueError(f"{obj['code']} has already been redeemed")
        if obj["expiration_date"][:10] < redeemed_at[:10]:
            raise ValueError(f"{obj['code']} had expired by {redeemed_at}")
        obj["redeemed"] = True
        obj["redeemed_at"] = redeemed_at
        obj["updated_at"] = stamp(now)
        _refresh(obj, stamp(now)[:10])
        self.admin_log.append(("redeem", obj["_id"]))
        return obj

    def admin_delete(self, id_or_code: str) -> Code:
        """The admin deletes the code (by ``_id`` or code) in Zype's dashboard; KeyError if none.

        Returns the object as it was. It is not an API DELETE: ``deletes`` and ``deleted_log``
        do not count it.
        """
        obj = self._require(id_or_code)
        self.remove(obj)
        self.admin_log.append(("delete", obj["_id"]))
        return obj

    def admin_change(self, id_or_code: str, **fields: Any) -> Code:
        """The admin edits the code (by ``_id`` or code) in Zype's dashboard.

        Takes what a PUT takes (``code``, ``expiration_date``, an entitlement; same rules) and
        also ``transaction_id`` (str or None), ``redeemed`` (bool), and ``redeemed_at``,
        ``created_at``, ``updated_at`` (an aware datetime, a date or an ISO 8601 string;
        ``redeemed_at`` also None). ``redeemed`` and ``redeemed_at`` move together: setting
        either sets the other (``redeemed=True`` alone stamps now). ``updated_at`` is bumped to
        now unless given. KeyError if there is no such code; ValueError, changing nothing, if a
        field is unknown or its value refused.
        """
        obj = self._require(id_or_code)
        unknown = sorted(fields.keys() - _CHANGEABLE)
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_CHANGEABLE))}"
            )
        times = {
            name: _admin_time(name, fields[name])
            for name in ("created_at", "updated_at", "redeemed_at")
            if name in fields
        }
        redeemed = fields.get("redeemed")
        if "redeemed" in fields and not isinstance(redeemed, bool):
            raise ValueError(f"redeemed must be true or false, got {redeemed!r}")
        if "redeemed_at" in times and redeemed not in (None, times["redeemed_at"] is not None):
            raise ValueError("redeemed and redeemed_at disagree")
        transaction = fields.get("transaction_id")
        if transaction is not None and not isinstance(transaction, str):
            raise ValueError(f"transaction_id must be a string or null, got {transaction!r}")
        content = {name: value for name, value in fields.items() if name in _CONTENT_FIELDS}
        if content and (problem := self.edit(obj, content)):
            raise ValueError(problem)

        now = stamp(self.now())
        if "transaction_id" in fields:
            obj["transaction_id"] = transaction
        if "redeemed_at" in times:
            obj["redeemed_at"] = times["redeemed_at"]
        elif redeemed is not None:
            obj["redeemed_at"] = (obj["redeemed_at"] or now) if redeemed else None
        obj["redeemed"] = obj["redeemed_at"] is not None
        if "created_at" in times:
            obj["created_at"] = times["created_at"]
        obj["updated_at"] = times.get("updated_at") or now
        _refresh(obj, now[:10])
        self.admin_log.append(("change", obj["_id"]))
        return obj

    def seed_others(
        self,
        count: int,
        *,
        entitlements: Sequence[tuple[str, str]] = (),
        seed: int | None = None,
    ) -> list[Code]:
        """Add `count` codes made by other people on the same site, created now, unredeemed.

        Each has a random 16-character code (upper-case letters and digits, as Zype generates)
        and expires in 1 to 36 months; its entitlement is drawn from `entitlements` (pairs like
        ``("video_id", "5c8e...")``), or when none are given, a random kind with a random id.
        `seed` makes them reproducible. Not counted as API creates (``created_log``).
        """
        if count < 0:
            raise ValueError(f"count must be at least 0, got {count}")
        for kind, target in entitlements:
            if kind not in ENTITLEMENTS or not _HEX24.fullmatch(target):
                raise ValueError(f"not an entitlement: {kind}={target!r}")
        rng = random.Random(seed)
        now = self.now()
        made: list[Code] = []
        for _ in range(count):
            code = "".join(rng.choices(_CODE_ALPHABET, k=16))
            while self.find_code(code) is not None:
                code = "".join(rng.choices(_CODE_ALPHABET, k=16))
            if entitlements:
                kind, target = rng.choice(entitlements)
            else:
                kind, target = rng.choice(list(ENTITLEMENTS)), f"{rng.getrandbits(96):024x}"
            expires = (now.astimezone(ACCOUNT_TZ) + timedelta(days=rng.randint(30, 1095))).date()
            content = _Content(code, expires.isoformat(), kind, target)
            obj = _new_code(content, f"{rng.getrandbits(96):024x}", self.site_id, now)
            self._store(obj)
            self.admin_log.append(("others", obj["_id"]))
            made.append(obj)
        return made

    # --- helpers ---

    def _require(self, id_or_code: str) -> Code:
        obj = self.find(id_or_code)
        if obj is None:
            raise KeyError(id_or_code)
        return obj

    def _store(self, obj: Code) -> None:
        folded = obj["code"].casefold()
        if folded in self._by_folded or obj["_id"] in self._by_id:
            raise ValueError(f"code {obj['code']!r} already exists")
        self.codes[obj["code"]] = obj
        self._by_folded[folded] = obj["code"]
        self._by_id[obj["_id"]] = obj


def _admin_time(name: str, value: object) -> str | None:
    """An admin-given time for field `name` as a stored timestamp (None: only ``redeemed_at``)."""
    if value is None and name == "redeemed_at":
        return None
    try:
        if isinstance(value, datetime):
            return stamp(value)
        if isinstance(value, str):
            return stamp(parse_instant(value))
    except (ValueError, OverflowError):
        pass
    raise ValueError(f"{name} must be a date or an ISO 8601 timestamp, got {value!r}")


def peak_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most of `times` (sorted ascending) that fall in any half-open `window`-second span."""
    best = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- listing -------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: its base URL (no trailing slash) and its live state."""

    url: str
    state: SandboxState


_STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state", SandboxState)


def sandbox_state(app: web.Application) -> SandboxState:
    """The state of an app made by :func:`create_app`."""
    return app[_STATE]


# --- answers -----------------------------------------------------------------------------------


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"message": message}, headers)


_NOT_FOUND = "Redemption code not found"


def _drop_connection(request: web.Request, *, rst: bool) -> web.Response:
    """Close the client's connection with no answer: RST if `rst`, else an orderly FIN.

    The returned response is never delivered: aiohttp fails to write it to the closed transport
    and ends the connection quietly (a debug log, no error), which is exactly what we want.
    """
    transport = request.transport
    if transport is not None:
        if rst:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            transport.abort()
        else:
            transport.close()
    return web.Response(status=204)


async def _read_fields(request: web.Request) -> dict[str, Any] | web.Response:
    """The ``redemption_code`` object of a create or update body, or the 422 refusing it."""
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _message(422, "Request body is not valid JSON")
    fields = body.get("redemption_code") if isinstance(body, dict) else None
    if not isinstance(fields, dict):
        return _message(422, 'Redemption code is missing: send {"redemption_code": {...}}')
    return fields


# --- the app -------------------------------------------------------------------------------------


def create_app(
    api_key: str, faults: Faults = Faults(), state: SandboxState | None = None
) -> web.Application:
    """An aiohttp app imitating the API for `api_key`, misbehaving per `faults`.

    `state` may be passed to share or pre-inspect it (or to set its clock); otherwise a fresh
    one is made. Either way :func:`sandbox_state` returns it.
    """
    st = state if state is not None else SandboxState()
    rng = random.Random(faults.seed)
    limit = math.floor(faults.rate_limit) if faults.rate_limit is not None else 0
    window: collections.deque[float] = collections.deque()
    # The 429 headers are the same every time; build them once.
    retry_after = {"Retry-After": "1"}
    present = _old_spelling if faults.old_flag_names else _same

    def auth(request: web.Request, write: bool) -> web.Response | None:
        keys = (request.query.get("api_key"), request.headers.get("x-zype-key"))
        if api_key in keys:
            return None
        if READ_ONLY_KEY in keys:
            return _message(403, "Forbidden") if write else None
        return _message(401, "Invalid or missing API key")

    @web.middleware
    async def faults_middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        now = time.monotonic()
        method = request.method
        st.requests += 1
        if method == "POST":
            st.posts += 1
        elif method == "GET":
            st.gets += 1
        elif method == "PUT":
            st.puts += 1
        elif method == "DELETE":
            st.deletes += 1
        st.per_second[int(now)] += 1
        st.arrivals.append(now)

        if faults.reset_rate and rng.random() < faults.reset_rate:
            st.faults_injected += 1
            return _drop_connection(request, rst=True)

        if limit:
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                st.rejected_429 += 1
                return _message(429, "Rate limit exceeded", retry_after)
            window.append(now)
        st.admitted.append(now)

        if faults.latency:
            # Sleeping here, not blocking, lets many slow requests overlap like a real server.
            await asyncio.sleep(faults.latency)

        if faults.error_rate and rng.random() < faults.error_rate:
            st.faults_injected += 1
            return _message(503, "Service Unavailable")

        response = await handler(request)

        if faults.lost_rate and method in _WRITES and rng.random() < faults.lost_rate:
            # The request took effect; only the answer is lost. This is the case that forces
            # the client to look the code up (or the code's state) before sending it again.
            st.faults_injected += 1
            return _drop_connection(request, rst=False)
        return response

    async def create(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        fields = await _read_fields(request)
        if isinstance(fields, web.Response):
            return fields
        problem, content = _check(fields)
        if content is None:
            return _message(422, problem)
        if st.find_code(content.code) is not None:
            return _message(422, "Code has already been taken")
        obj = _new_code(content, secrets.token_hex(12), st.site_id, st.now())
        st.add(obj)
        return _json(201, {"response": present(obj)})

    async def list_codes(request: web.Request) -> web.Response:
        if (refused := auth(request, write=False)) is not None:
            return refused
        query = request.query
        try:
            page = int(query.get("page", "1"))
            per_page = min(int(query.get("per_page", str(DEFAULT_PER_PAGE))), MAX_PER_PAGE)
        except ValueError:
            return _message(422, "page and per_page must be whole numbers")
        if page < 1 or per_page < 1:
            return _message(422, "page and per_page must be at least 1")
        try:
            matches = select(st, query.items())
        except ValueError as exc:
            return _message(422, str(exc))
        pages = math.ceil(len(matches) / per_page)
        start = (page - 1) * per_page
        pagination = {
            "current": page,
            "previous": page - 1 if page > 1 else None,
            "next": page + 1 if page < pages else None,
            "per_page": per_page,
            "pages": pages,
        }
        shown = matches[start : start + per_page]
        today = st.today()
        for obj in shown:
            _refresh(obj, today)
        return _json(200, {"response": [present(obj) for obj in shown], "pagination": pagination})

    async def get_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=False)) is not None:
            return refused
        obj = st.find(request.match_info["id_or_code"])
        if obj is None:
            return _message(404, _NOT_FOUND)
        _refresh(obj, st.today())
        return _json(200, {"response": present(obj)})

    async def update_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        obj = st.find_id(request.match_info["id"])
        if obj is None:
            return _message(404, _NOT_FOUND)
        fields = await _read_fields(request)
        if isinstance(fields, web.Response):
            return fields
        if problem := st.edit(obj, fields):
            return _message(422, problem)
        st.updated_log.append(obj["_id"])
        return _json(200, {"response": present(obj)})

    async def delete_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        obj = st.find_id(request.match_info["id"])
        if obj is None:
            return _message(404, _NOT_FOUND)
        st.remove(obj)
        st.deleted_log.append(obj["_id"])
        return web.Response(status=204)

    async def not_found(request: web.Request) -> web.Response:
        return _message(404, "Not found")

    app = web.Application(middlewares=[faults_middleware])
    app[_STATE] = st
    app.router.add_post("/redemption_codes", create)
    app.router.add_get("/redemption_codes", list_codes)
    app.router.add_get("/redemption_codes/{id_or_code}", get_one)
    app.router.add_put("/redemption_codes/{id}", update_one)
    app.router.add_delete("/redemption_codes/{id}", delete_one)
    _add_admin_routes(app, st, lambda request: auth(request, write=True), present)
    # Registered last: the router only falls through to it when nothing above matches.
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def _add_admin_routes(
    app: web.Application,
    st: SandboxState,
    auth: Callable[[web.Request], web.Response | None],
    present: Callable[[Code], Code],
) -> None:
    """The ``/_sandbox/`` endpoints: the admin's and customers' doings, over HTTP."""

    def acting(
        action: Callable[[web.Request], Awaitable[Any]], status: int = 200
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            if (refused := auth(request)) is not None:
                return refused
            try:
                result = await action(request)
            except KeyError:
                return _message(404, _NOT_FOUND)
            except ValueError as exc:
                return _message(422, str(exc))
            if isinstance(result, list):
                return _json(status, {"response": [present(obj) for obj in result]})
            return _json(status, {"response": present(result)})

        return handler

    async def redeem(request: web.Request) -> Code:
        at = request.query.get("at")
        try:
            when = None if at is None else parse_instant(at)
        except ValueError:
            raise ValueError(f"at must be a date or an ISO 8601 timestamp, got {at!r}") from None
        return st.redeem(request.match_info["id_or_code"], when)

    async def delete(request: web.Request) -> Code:
        return st.admin_delete(request.match_info["id_or_code"])

    async def change(request: web.Request) -> Code:
        try:
            fields = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise ValueError("Request body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise ValueError("send a JSON object of the fields to change")
        return st.admin_change(request.match_info["id_or_code"], **fields)

    async def others(request: web.Request) -> list[Code]:
        query = request.query
        try:
            count = int(query.get("count", "1"))
            seed = int(query["seed"]) if "seed" in query else None
        except ValueError:
            raise ValueError("count and seed must be whole numbers") from None
        pairs = [(name, value) for name, value in query.items() if name in ENTITLEMENTS]
        return st.seed_others(count, entitlements=pairs, seed=seed)

    async def stats(request: web.Request) -> dict[str, int]:
        return {
            "codes": len(st.codes),
            "requests": st.requests,
            "posts": st.posts,
            "gets": st.gets,
            "puts": st.puts,
            "deletes": st.deletes,
            "rejected_429": st.rejected_429,
            "faults_injected": st.faults_injected,
            "created": len(st.created_log),
            "updated": len(st.updated_log),
            "deleted": len(st.deleted_log),
        }

    app.router.add_post(f"{ADMIN_PREFIX}redeem/{{id_or_code}}", acting(redeem))
    app.router.add_post(f"{ADMIN_PREFIX}delete/{{id_or_code}}", acting(delete))
    app.router.add_post(f"{ADMIN_PREFIX}change/{{id_or_code}}", acting(change))
    app.router.add_post(f"{ADMIN_PREFIX}others", acting(others, status=201))
    app.router.add_get(f"{ADMIN_PREFIX}stats", acting(stats))


# --- running it ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_sandbox(
    api_key: str,
    faults: Faults = Faults(),
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    others: int = 0,
    state: SandboxState | None = None,
) -> AsyncIterator[Sandbox]:
    """Serve a sandbox on `host`:`port` (0: a free port) for the duration of the block.

    `others` codes of other people are seeded first (:meth:`SandboxState.seed_others`); `state`
    may be given to share it or set its clock. Yields a :class:`Sandbox` with the real URL; on
    exit the server is shut down and every open connection closed.
    """
    app = create_app(api_key, faults, state)
    if others:
        sandbox_state(app).seed_others(others)
    # No access log: one log line per request would cost more than answering it.
    # A short shutdown timeout: a test leaving with a slow (latency) request still in flight
    # should not wait a minute.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        # A long backlog: tests and benchmarks open many connections at the same instant.
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield Sandbox(url=f"http://{url_host}:{bound_port}", state=sandbox_state(app))
    finally:
        await runner.cleanup()


def serve(
    api_key: str,
    faults: Faults = Faults(),
    host: str = "127.0.0.1",
    port: int = 8808,
    *,
    others: int = 0,
) -> None:
    """Serve a sandbox until Ctrl-C or SIGTERM (blocking), after printing where it listens.

    `others`: how many codes of other people it holds from the start. The first line printed is
    ``sandbox listening on URL (api key: KEY)``; the second names the admin endpoints.
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with running_sandbox(api_key, faults, host, port, others=others) as sandbox:
            print(f"sandbox listening on {sandbox.url} (api key: {api_key})", flush=True)
            print(
                f"as the admin or a customer (same key): POST {sandbox.url}{ADMIN_PREFIX}"
                "{redeem,delete,change}/ID_OR_CODE, "
                f"POST {sandbox.url}{ADMIN_PREFIX}others?count=N, "
                f"GET {sandbox.url}{ADMIN_PREFIX}stats",
                flush=True,
            )
            await stop.wait()

    # asyncio.run turns Ctrl-C into a cancellation of main(), so the server is cleaned up first.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
