"""How the sandbox misbehaves, on its own so the importer can name it without loading the server.

The rest of :mod:`importer.sandbox` (and with it ``aiohttp.web``) is imported only when a
sandbox is run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    """How the sandbox misbehaves. The defaults make a well-behaved API.

    Rates are probabilities per request in ``[0, 1]``; ``rate_limit`` is requests per second
    (``None``: unlimited) in any sliding one-second window, refused requests counted too;
    ``rate_limit_to`` replaces it ``rate_change_at`` seconds after the first request (a limit
    tightened or loosened mid-run); ``rate_headers`` states the limit on every answer in
    ``X-RateLimit-Limit``/``-Remaining``/``-Reset``; ``no_retry_after`` sends 429s without
    ``Retry-After``. ``seed`` makes the random draws reproducible (for a given arrival
    order). ``old_flag_names`` is not a fault of the network but of the API's dialect: answers
    spell the flags ``available?``, ``redeemed?``, ``expired?`` as Zype's older answers do (it
    takes ``True``/``False`` or, as the CLI's ``old_flag_names=1`` gives it, ``1``/``0``).
    Impossible values raise :class:`ValueError` at once.
    """

    latency: float = 0.0
    rate_limit: float | None = None
    error_rate: float = 0.0
    reset_rate: float = 0.0
    lost_rate: float = 0.0
    seed: int | None = None
    old_flag_names: bool = False
    rate_limit_to: float | None = None
    rate_change_at: float = 0.0
    rate_headers: bool = False
    no_retry_after: bool = False

    def __post_init__(self) -> None:
        for name in ("old_flag_names", "rate_headers", "no_retry_after"):
            flag: object = getattr(self, name)
            # 1.0 == 1 == True: the CLI parses every value but the seed as a float.
            if flag not in (0, 1):
                raise ValueError(f"{name} must be 0 or 1 (or a bool), got {flag!r}")
            object.__setattr__(self, name, bool(flag))
        for name in ("error_rate", "reset_rate", "lost_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if not (self.latency >= 0.0 and math.isfinite(self.latency)):
            raise ValueError(
                f"latency must be a finite number of seconds >= 0, got {self.latency!r}"
            )
        for name in ("rate_limit", "rate_limit_to"):
            value = getattr(self, name)
            if value is not None and not value >= 1.0:
                raise ValueError(f"{name} must be at least 1 request/s, got {value!r}")
        if self.rate_limit_to is not None and self.rate_limit is None:
            raise ValueError("rate_limit_to needs a rate_limit to change from")
        if not (self.rate_change_at >= 0.0 and math.isfinite(self.rate_change_at)):
            raise ValueError(f"rate_change_at must be seconds >= 0, got {self.rate_change_at!r}")
