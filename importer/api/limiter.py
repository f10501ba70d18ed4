"""A strict, evenly paced rate limiter that backs off on 429 and recovers gradually.

Why not a leaky bucket or an exact sliding window at the client: measured on this machine,
aiolimiter(100, 1) let 200 requests reach a server in one second, and a client-exact sliding
window still reached 105-119 per second at the server, because requests bunch up on the way and
groups slide across the server's window edge. Evenly spaced grants with at most ``burst`` in hand
and ``burst + pace x 1 s <= limit`` held the server at 99 for a limit of 100 while achieving 98/s.

So the limiter is a GCRA (generic cell rate algorithm): grants are ``1 / pace`` seconds apart
and may run at most ``burst - 1`` intervals ahead of that schedule. Any one-second window then
holds at most ``pace + burst - 1`` grants (one under the limit), from the very first second.

Callers queue first come, first served, and only the head of the queue sleeps, until the next
moment that conforms; the grant is then decided at the *actual* time against the grants actually
made. Slots are not handed out in advance because when the event loop is held up (a journal
commit, a GC pause), every slot that passed meanwhile would then be granted at once, and that
bunch is exactly what a server counts against the limit.

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
#: Seconds without a 429 in which the pace climbs back from one cut to full speed.
RECOVERY_SECONDS = 10.0
#: Share of the limit kept as headroom at high rates. Bunching on the way is a matter of
#: milliseconds, so the headroom it needs grows with the rate: 1% covers 10 ms of bunching, and
#: only bites above 200/s, where ``limit - burst`` alone would leave under 5 ms.
HEADROOM = 0.01
#: How early a sleep may wake and still count as on time (asyncio wakes within its clock's
#: resolution, float sums drift by an ulp); far below anything a server could tell apart.
EARLY = 1e-6


def pacing_for(limit: float) -> tuple[float, int]:
    """The pace (grants/s) and burst that keep any one-second window at or under *limit*.

    A burst of 2 from 20/s up, 1 below; the pace gives up ``burst`` grants a second (at least
    1% of the limit) as headroom for requests that bunch up on the way, never more than half.
    """
    if not limit > 0:
        raise ValueError(f"rate limit must be greater than 0, got {limit!r}")
    burst = 2 if limit >= 20 else 1
    return max(min(limit - burst, limit * (1 - HEADROOM)), limit / 2), burst


class PacedLimiter:
    """Grant at most ``limit`` requests in any one-second window, evenly spaced.

    ``await acquire()`` before each request. ``throttled(retry_after)`` after a 429 pauses every
    caller until the server's ``Retry-After`` has passed and halves the pace; the pace then climbs
    back linearly, reaching full speed :data:`RECOVERY_SECONDS` after the pause if no other 429
    comes.
    """

    def __init__(
        self, limit: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.limit = limit
        self.full_pace, self.burst = pacing_for(limit)
        self.pace = self.full_pace
        self._floor = min(1.0, self.full_pace)
        self._clock = clock
        self._sleep = sleep
        self._turn = asyncio.Lock()  # first come, first served; only its holder sleeps
        self._queued = 0  # callers inside acquire(): try_acquire() must not jump the queue
        self._tat = -float("inf")  # theoretical time of the next grant (GCRA)
        self._paused_until = -float("inf")
        self._last_cut = -float("inf")
        self._last_recovery = clock()
        #: Whether :meth:`allow_one_more` wakes a caller asleep until its slot (``--rate auto``
        #: sets it; a fixed pace never calls it and keeps its plain sleep).
        self.wakeable = False
        self._wake: asyncio.Future[None] | None = None

    @property
    def paused_until(self) -> float:
        """Clock time before which nobody is granted (after a 429)."""
        return self._paused_until

    def try_acquire(self) -> bool:
        """Take a grant now if one is due and nobody is queued for one; never waits.

        At high rates a slot is almost always due, and the caller's stop-aware wait (two tasks
        and a cancellation per request) would cost more CPU than the request itself; callers try
        this first and :meth:`acquire` only when it says no. The same GCRA decides both.
        """
        if self._queued:
            return False
        now = self._clock()
        if now < self._paused_until:
            return False
        self._recover(now)
        interval = 1.0 / self.pace
        if now + EARLY >= self._tat - (self.burst - 1) * interval:
            self._tat = max(self._tat, now) + interval
            return True
        return False

    async def acquire(self) -> None:
        """Wait for this caller's turn."""
        self._queued += 1
        try:
            await self._acquire()
        finally:
            self._queued -= 1

    async def _acquire(self) -> None:
        async with self._turn:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._recover(now)
                interval = 1.0 / self.pace
                earliest = self._tat - (self.burst - 1) * interval
                if now + EARLY >= earliest:
                    self._tat = max(self._tat, now) + interval
                    return
                # Decided again on waking: a 429 may have come meanwhile.
                await self._nap(earliest - now)

    async def _nap(self, seconds: float) -> None:
        """Sleep *seconds*, or less if :meth:`allow_one_more` moves the schedule meanwhile."""
        if not self.wakeable:
            await self._sleep(seconds)
            return
        self._wake = asyncio.get_running_loop().create_future()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait((sleeper, self._wake), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            self._wake = None

    def throttled(self, retry_after: float | None) -> None:
        """React to a 429: pause everyone, slow down (at most one cut a second).

        Many requests in flight meet the same 429; cutting once for all of them keeps one
        overloaded second from dropping the pace to the floor.
        """
        now = self._clock()
        pause = 1.0 if retry_after is None else max(retry_after, 0.0)
        self._paused_until = max(self._paused_until, now + pause)
        if now - self._last_cut >= 1.0:
            self.pace = max(self.pace * BACKOFF_FACTOR, self._floor)
            self._last_cut = now
        self._last_recovery = max(now, self._paused_until)

    def retune(self, pace: float, burst: int, paused_until: float) -> None:
        """Pace at *pace* with *burst* from now on, nobody granted before *paused_until*: the
        hook ``--rate auto`` drives (:mod:`importer.api.pacing`); no recovery of its own."""
        self.limit = self.full_pace = self.pace = pace
        self.burst = burst
        self._paused_until = max(self._paused_until, paused_until)

    def allow_one_more(self) -> None:
        """Let one grant through now, out of turn: ``--rate auto``'s probe of a higher limit."""
        self._tat -= 1.0 / self.pace
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def granted(self) -> None:
        """Nothing to note: a fixed pace needs no ticket (``--rate auto``'s limiter does)."""

    def answered(self, ticket: None, answer: object) -> None:
        """Nothing: a fixed pace reacts only to 429s (:meth:`throttled`)."""

    def _recover(self, now: float) -> None:
        if self.pace < self.full_pace and now > self._last_recovery:
            per_second = self.full_pace * (1 - BACKOFF_FACTOR) / RECOVERY_SECONDS
            self.pace = min(self.full_pace, self.pace + per_second * (now - self._last_recovery))
        self._last_recovery = max(self._last_recovery, now)
