"""A strict, evenly paced rate limiter that backs off on 429 and recovers gradually.

Why not a leaky bucket or an exact sliding window at the client: measured on this machine,
aiolimiter(100, 1) let 200 requests reach a server in one second, and a client-exact sliding
window still reached 105-119 per second at the server, because requests bunch up on the way and
groups slide across the server's window edge. Evenly spaced grants with at most ``burst`` in hand
and ``burst + pace x 1 s <= limit`` held the server at 99 for a limit of 100 while achieving 98/s.

So the limiter is a GCRA (generic cell rate algorithm): each grant reserves the next slot,
``1 / pace`` seconds after the previous one, and may run at most ``burst - 1`` slots ahead.
The clock and the sleep are injected so tests move time instead of waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: After a 429 the pace is multiplied by this, at most once a second.
BACKOFF_FACTOR = 0.5
#: Share of the full pace regained per second without a 429 (full speed in 10 s).
RECOVERY_PER_SECOND = 0.1


def pacing_for(limit: float) -> tuple[float, int]:
    """The pace (grants/s) and burst that keep any one-second window at or under *limit*.

    A burst of 2 above 20/s, 1 below; the pace gives up ``burst`` grants a second as headroom
    for requests that bunch up on the way, never more than half the limit.
    """
    if limit <= 0:
        raise ValueError("rate limit must be greater than 0")
    burst = 2 if limit >= 20 else 1
    return max(limit - burst, limit / 2), burst


class PacedLimiter:
    """Grant at most ``limit`` requests in any one-second window, evenly spaced.

    ``await acquire()`` before each request. ``throttled(retry_after)`` after a 429 pauses every
    caller until the server's ``Retry-After`` has passed and halves the pace; the pace then creeps
    back to full over about ten seconds without another 429.
    """

    def __init__(
        self, limit: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.limit = limit
        self.full_pace, self.burst = pacing_for(limit)
        self.pace = self.full_pace
        self._clock = clock
        self._sleep = sleep
        self._next = -float("inf")  # theoretical time of the next grant
        self._paused_until = -float("inf")
        self._last_cut = -float("inf")
        self._last_recovery = clock()

    async def acquire(self) -> None:
        """Wait for this caller's slot."""
        while True:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            self._recover(now)
            interval = 1.0 / self.pace
            slot = max(self._next, now)
            self._next = slot + interval
            wait = slot - (self.burst - 1) * interval - now
            if wait > 0:
                await self._sleep(wait)
            # A 429 seen by another worker while this one slept cancels this slot.
            if self._clock() >= self._paused_until:
                return

    def throttled(self, retry_after: float | None) -> None:
        """React to a 429: pause everyone, slow down (at most one cut a second)."""
        now = self._clock()
        pause = 1.0 if retry_after is None else max(retry_after, 0.0)
        self._paused_until = max(self._paused_until, now + pause)
        self._next = max(self._next, self._paused_until)
        if now - self._last_cut >= 1.0:
            self.pace = max(self.pace * BACKOFF_FACTOR, min(1.0, self.full_pace))
            self._last_cut = now
        self._last_recovery = max(now, self._paused_until)

    def _recover(self, now: float) -> None:
        if self.pace < self.full_pace and now > self._last_recovery:
            gained = self.full_pace * RECOVERY_PER_SECOND * (now - self._last_recovery)
            self.pace = min(self.full_pace, self.pace + gained)
        self._last_recovery = now
