"""The sandbox's code objects: what a create or an update may set, how it is checked, and the
timestamps every object carries.

A code object is the JSON object Zype answers for a redemption code. Its timestamps all have one
shape and one offset (:func:`stamp`), so comparing them as strings compares them in time.

A code object's flags are live: ``expired`` is true once the account's calendar date (UTC-5) is
past the expiration date, ``available`` is ``not redeemed and not expired``; both are recomputed
whenever a code is answered (:func:`_refresh`). ``redeemed`` is true exactly when
``redeemed_at`` is set. :data:`MISSING_ID` is an entitlement id that is well formed but names
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

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

#: What a create or an update may set; admin_change may also set the rest of state._CHANGEABLE.
_CONTENT_FIELDS = frozenset({"code", "expiration_date", *ENTITLEMENTS})

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_YMD = re.compile(r"\d{4}-\d{2}-\d{2}")

Code = dict[str, Any]


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
