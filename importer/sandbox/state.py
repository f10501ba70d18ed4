"""What the sandbox holds and has seen: :class:`SandboxState`, and the clock it runs on.

:class:`SandboxState` holds the codes and counters so tests can inspect what the server saw.
Codes are unique case-insensitively, so a double create is impossible by construction;
``created_log``, ``updated_log`` and ``deleted_log`` let a test prove that each write happened
exactly once. Its clock (``SandboxState.now``) stamps ``created_at``, ``updated_at`` and
``redeemed_at`` and decides ``expired``; tests replace it.

Acting as the account's admin and customers: :meth:`SandboxState.redeem`,
:meth:`~SandboxState.admin_delete`, :meth:`~SandboxState.admin_change` and
:meth:`~SandboxState.seed_others` (codes of other people on the same site). They are not API
traffic: no counter or ``*_log`` counts them (they go to ``admin_log``). Over HTTP they are the
``/_sandbox/`` endpoints of :mod:`importer.sandbox.admin`.
"""

from __future__ import annotations

import collections
import random
import secrets
import string
from collections.abc import Callable, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from importer.sandbox.objects import (
    _CONTENT_FIELDS,
    _HEX24,
    ACCOUNT_TZ,
    ENTITLEMENTS,
    Code,
    _check,
    _Content,
    _content_fields,
    _new_code,
    _refresh,
    parse_instant,
    stamp,
)

_CHANGEABLE = _CONTENT_FIELDS | {
    "transaction_id",
    "redeemed",
    "redeemed_at",
    "created_at",
    "updated_at",
}
_CODE_ALPHABET = string.ascii_uppercase + string.digits


def _account_now() -> datetime:
    return datetime.now(ACCOUNT_TZ)


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
