"""Rate-limit headers: what an answer says about the server's limit, read into :class:`RateInfo`.

:func:`rate_headers` names the spellings it reads and their order;
:class:`~importer.api.pacing.AutoPace` follows a stated limit instead of searching for one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateInfo:
    """What an answer's rate-limit headers say: ``limit`` requests per ``window`` seconds."""

    limit: float
    window: float | None = None
    remaining: float | None = None
    #: Seconds from now until the window resets (or until ``remaining`` grows).
    reset: float | None = None

    @property
    def rate(self) -> float:
        """Requests per second (a window of one second when none is stated)."""
        return self.limit / (self.window or 1.0)


_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*$")
_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*"?(\d+(?:\.\d+)?)"?')
#: A reset larger than this is an epoch time, not a delta (ten years of seconds).
_EPOCH = 315_360_000.0


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    match = _NUMBER.match(value)
    return float(match.group(1)) if match else None


def _delta(reset: float | None, now: float) -> float | None:
    if reset is None:
        return None
    return max(reset - now, 0.0) if reset > _EPOCH else reset


def _params(value: str | None) -> dict[str, float]:
    """``limit=10, remaining=3, reset=5`` or ``"default";q=10;w=1``: lowest-cased keys."""
    if value is None:
        return {}
    params: dict[str, float] = {}
    first = value.split(",")[0] if "q=" in value or "r=" in value else value
    for key, number in _PARAM.findall(first):
        params.setdefault(key.lower(), float(number))
    if not params and (plain := _number(value.split(";")[0])) is not None:
        params["q"] = plain  # ``RateLimit-Policy: 100;w=60`` (draft 03-06)
        for key, number in _PARAM.findall(value):
            params.setdefault(key.lower(), float(number))
    return params


def rate_headers(headers: Mapping[str, str], now: float) -> RateInfo | None:
    """The limit an answer states, or None; *now* is the wall clock (for epoch resets).

    Read in this order: ``X-RateLimit-Limit/-Remaining/-Reset``; the draft's
    ``RateLimit-Limit/-Remaining/-Reset`` (with ``RateLimit-Policy: 100;w=1`` for the window);
    ``RateLimit: limit=.., remaining=.., reset=..``; ``RateLimit-Policy: "p";q=..;w=..`` with
    ``RateLimit: "p";r=..;t=..``. A reset above ten years of seconds is an epoch time.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    policy = _params(lower.get("ratelimit-policy"))
    window = policy.get("w")
    for prefix in ("x-ratelimit-", "ratelimit-"):
        limit = _number(lower.get(prefix + "limit"))
        if limit is not None and limit > 0:
            return RateInfo(
                limit,
                window,
                _number(lower.get(prefix + "remaining")),
                _delta(_number(lower.get(prefix + "reset")), now),
            )
    field = _params(lower.get("ratelimit"))
    limit = field.get("limit", policy.get("q"))
    if limit is None or limit <= 0:
        return None
    remaining = field.get("remaining", field.get("r"))
    return RateInfo(limit, window, remaining, _delta(field.get("reset", field.get("t")), now))
