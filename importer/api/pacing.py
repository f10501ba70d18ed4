"""``--rate auto``: a pure pacing policy that finds an unpublished rate limit and holds under it.

The server (Zype) publishes no limit. What it is assumed to do, per the issue: count requests in
a sliding one-second window, refused ones included, and refuse a request when the window already
holds ``L``. The policy never sleeps and reads no clock: the caller passes ``now`` to every method,
and drives :class:`~importer.api.limiter.PacedLimiter` with :attr:`AutoPace.pace`,
:attr:`AutoPace.burst`, :attr:`AutoPace.resume_at` and :meth:`AutoPace.wants_probe`.

Why counts, not rates. Every grant is logged (:meth:`AutoPace.on_sent`) and its ticket remembers
how many of our own requests were sent in the second before it (``n_before``). With a steady
one-way delay that is the count the server saw, so an accepted ticket proves ``L > n_before`` and
a refused one proves ``L <= n_before``. The first refusal of a ramp therefore brackets ``L``
exactly (the previous request saw one fewer), where a rate-based estimate (the pace at the 429)
is off by the ramp's lag: with the pace doubling every 0.5 s the window holds only about 0.72 of
the pace, so "the pace that was refused" overestimates ``L`` by 40%. The policy keeps ``level``:
the most requests a window is known to accept.

Why the pace holds ``level`` with time slack, not a percentage. A pace ``p`` with burst ``b`` puts
at most ``p + b - 1`` grants in any second; ``p = (level - b + 1) / (1 + SLACK)`` keeps ``level``
grants apart by ``SLACK`` seconds more than the window, so arrival jitter up to that much cannot
make a server count ``level + 1``. It costs 3% of the rate, against 12-50% for ``pacing_for``'s
``limit - burst`` at small limits (7 of 8 is 12.5% lost).

Why this shape of search. Slow start doubles the pace every :data:`DOUBLING` seconds from
:data:`START_PACE` (or from the remembered level, held at once), because each second of ramp
costs about half the requests it could have made. A refusal sets ``level`` to one above the best
count accepted since the last cut; a refusal with nothing accepted since the last cut (the limit
fell, or the pause was too short) halves it, which follows a drop in a few steps of one latency
each. A 429 may come back long before acceptances sent ahead of it (the server refuses at once
but takes its time over what it accepts): such late acceptances raise ``level`` up to the count
that was refused, and never count as a rise. After a cut everyone waits until our own log says
the window has drained to ``level``, or for ``Retry-After`` when the server gives one.

Upward, the policy probes every :data:`PROBE_REQUESTS` grants, and no closer than
:data:`PROBE_MIN_SECONDS`, while it holds: at a normal grant that finds the window nearly full it
grants, at once and out of turn, the few more that fill our window to ``level`` (the last one
finds ``level`` there). They are all marked with the probe's number, since requests sent together
may reach the server in any order. All of them accepted, the fullest at ``level``, proves the
limit rose: slow start again. One refused is a failed probe: the limit is ``level``, as known; it
costs a 429 or two, and the schedule slides by the probe's grants (and waits for our log to show
room) instead of waiting for a whole-second ``Retry-After``, so probing often enough to follow a
rising limit within seconds costs under 2% of requests and almost no time.

Probes come at least every :data:`PROBE_MAX_SECONDS` too, so a level cut far below the limit
(at a few per second 80 grants would take half a minute) climbs back within seconds. A 429
that our own window cannot explain, holding under :data:`FOREIGN_SHARE` of what it is known to
fill, is someone else's requests in the server's window (the command run just before, or another
client on the key): the pace is halved once and the window waited out, instead of taking the
near-empty count as the limit.

Where answers carry rate-limit headers (``X-RateLimit-*``, the IETF draft's ``RateLimit-*``, or
``RateLimit``/``RateLimit-Policy`` structured fields; read by :mod:`importer.api.rate_headers`),
the stated limit replaces the search and ``remaining == 0`` pauses until the stated reset, so
such an API sees almost no 429.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass

from importer.api.limiter import Clock, PacedLimiter
from importer.api.rate_headers import RateInfo, rate_headers
from importer.api.wire import Answer, parse_retry_after

#: The pace (grants/s) of a run that knows nothing yet.
START_PACE = 6.0
#: Seconds in which slow start doubles the pace.
DOUBLING = 0.15
#: Time slack kept between ``level`` grants and the server's one-second window.
SLACK = 0.03
#: The share of ``level`` kept after a refusal with no acceptance since the previous cut.
BETA = 0.5
#: A 429 when our own window holds under this share of what it is known to fill is put down to
#: someone else's requests (see :meth:`AutoPace._foreign_refusal`): a limit that falls to a
#: quarter or less costs one extra second to follow.
FOREIGN_SHARE = 0.25
#: Grants between two probes: a failed probe costs one 429, so under 2% of requests.
PROBE_REQUESTS = 80
#: The shortest time between probes.
PROBE_MIN_SECONDS = 2.0
#: A probe comes at least this often (seconds), however few grants a low level makes: a level
#: cut too far (see :data:`BETA`) climbs back within seconds, not minutes.
PROBE_MAX_SECONDS = 10.0
#: A probe starts only when the window holds at least ``level`` minus this many of ours (the
#: extra grants that fill it to ``level`` come at once).
PROBE_FILL = 3
#: In-flight requests = ``pace x latency x`` this, plus :data:`IN_FLIGHT_EXTRA`.
IN_FLIGHT_MARGIN = 1.5
IN_FLIGHT_EXTRA = 2
DEFAULT_MAX_RATE = 100.0
DEFAULT_MAX_IN_FLIGHT = 64
#: The longest a computed drain pause may be (the window is one second).
MAX_DRAIN = 1.0
#: How far past the known level a window must be accepted, without a probe, to prove the limit
#: rose: behind a long latency, requests the in-flight cap held back leave in bunches that the
#: server never counts as one second, so one more than the level proves nothing.
RISE_MARGIN = 2
#: Weight of a new latency sample in the moving average.
LATENCY_WEIGHT = 0.1


@dataclass(frozen=True, slots=True)
class Ticket:
    """One grant, as :meth:`AutoPace.on_sent` saw it; hand it back with the answer."""

    sent_at: float
    #: Our own requests sent in the second before this one (what the server counted).
    n_before: int
    #: The probe this grant belongs to (its number, from 1), or 0.
    probe: int = 0


def hold_pace(level: float, max_rate: float = DEFAULT_MAX_RATE) -> tuple[float, int]:
    """The pace and burst that keep any one-second window at or under *level* grants.

    ``level`` grants take ``SLACK`` seconds more than the window; never above *max_rate*.
    """
    burst = 2 if level >= 20 else 1
    pace = max(level - burst + 1, 0.5) / (1 + SLACK)
    return min(pace, max_rate), burst if pace >= 20 else 1


class AutoPace:
    """The pacing policy of ``--rate auto``: pure, every method is told the time.

    Call :meth:`on_sent` at every grant (its ticket goes with the request), then
    :meth:`on_success` or :meth:`on_throttle` with the answer. Read :attr:`pace`,
    :attr:`burst` and :attr:`resume_at` for the limiter, :meth:`in_flight` for the workers,
    :meth:`wants_probe` after each grant (yes: grant one more at once), and keep :attr:`level`
    for the next run (``AutoPace(remembered=level)``).
    """

    def __init__(
        self,
        *,
        remembered: float | None = None,
        max_rate: float = DEFAULT_MAX_RATE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        start_pace: float = START_PACE,
    ) -> None:
        if not max_rate > 0:
            raise ValueError(f"max_rate must be greater than 0, got {max_rate!r}")
        self.max_rate = max_rate
        self.max_in_flight = max(1, max_in_flight)
        #: Most requests one window is known to accept; None while slow start searches.
        self.level: float | None = None
        self.stated: RateInfo | None = None
        self.resume_at = -math.inf
        self.latency: float | None = None
        self._pace = min(start_pace, max_rate)
        self._grown_at: float | None = None
        self._sent: deque[float] = deque()
        self._cut_at = -math.inf
        self._best_ok = -1  # highest n_before accepted since the last cut
        #: The count refused at the last cut: the window holds fewer than this.
        self._ceiling = math.inf
        #: Whether the last cut was a refusal our own requests do not explain (see on_throttle).
        self._foreign = False
        self._grants_since_probe = 0
        self._last_probe = -math.inf
        self._probe_extras = 0  # grants still to make out of turn for the current probe
        self._probe = 0  # the current probe's number
        self._probe_size = 0  # its grants
        self._probe_left = 0  # its grants not yet answered; -1 once one was refused
        self._probe_top = -1  # the fullest window one of its accepted grants found
        if remembered is not None and remembered > 0:
            self.level = float(remembered)
            self._last_probe = -math.inf

    # -- what the limiter reads --------------------------------------------------------------
    @property
    def pace(self) -> float:
        """Grants per second now: always in ``(0, max_rate]``."""
        if self.stated is not None:
            return hold_pace(self.stated.rate, self.max_rate)[0]
        if self.level is not None:
            return hold_pace(self.level, self.max_rate)[0]
        return self._pace

    @property
    def burst(self) -> int:
        """Grants the limiter may run ahead of its schedule."""
        level = self.stated.rate if self.stated is not None else self.level
        return 1 if level is None else hold_pace(level, self.max_rate)[1]

    def in_flight(self, latency: float | None = None) -> int:
        """Requests that may be in flight: Little's law with a margin, in ``[1, max_in_flight]``."""
        seconds = latency if latency is not None else (self.latency or 0.0)
        wanted = math.ceil(self.pace * seconds * IN_FLIGHT_MARGIN) + IN_FLIGHT_EXTRA
        return max(1, min(self.max_in_flight, wanted))

    def wants_probe(self, now: float) -> bool:
        """Whether to grant one more request right now, out of turn (asked after each grant).

        A probe is a few grants at once (usually two or three, begun by :meth:`on_sent` at a
        normal grant) that fill our window to one past ``level``; yes until they are made.
        """
        if now < self.resume_at:
            self._probe_extras = 0
        return self._probe_extras > 0

    # -- what the engine reports -------------------------------------------------------------
    def on_sent(self, now: float) -> Ticket:
        """A grant was made at *now*; returns the ticket to pass back with its answer."""
        count = self._window(now)
        if self._last_probe == -math.inf:
            self._last_probe = now  # the first probe comes PROBE_MIN_SECONDS after the start
        if not self._probe_extras and self._probe_due(now, count):
            assert self.level is not None
            self._probe += 1
            self._probe_extras = PROBE_FILL + 1
            self._probe_size = self._probe_left = 0
            self._probe_top = -1
            self._grants_since_probe = 0
            self._last_probe = now
        # Every grant of a probe is marked: sent together, they may reach the server in any
        # order, so any of them may be the one that finds the window full.
        probe = self._probe if self._probe_extras > 0 else 0
        if probe:
            assert self.level is not None
            self._probe_extras -= 1
            self._probe_size += 1
            self._probe_left += 1
            if count >= self.level:
                self._probe_extras = 0  # this one finds the window at the level
            if not self._probe_extras:
                # The grants made out of turn stay in the window for a second: the schedule
                # slides by them, or the next ones would find it full.
                slide = now + (self._probe_size - 1) / self.pace
                self.resume_at = max(self.resume_at, slide)
        self._sent.append(now)
        self._grants_since_probe += 1
        return Ticket(now, count, probe)

    def _probe_due(self, now: float, count: int) -> bool:
        if self.level is None or self.stated is not None or now < self.resume_at:
            return False
        if self.level * (1 + SLACK) >= self.max_rate:
            return False
        since = now - self._last_probe
        if since < PROBE_MIN_SECONDS:
            return False
        if self._grants_since_probe < PROBE_REQUESTS and since < PROBE_MAX_SECONDS:
            return False
        # Held back by the in-flight cap, not the pace, the window is far from full: not here.
        return count + PROBE_FILL > self.level

    def on_success(self, ticket: Ticket, now: float, info: RateInfo | None = None) -> None:
        """A request was answered (anything but 429) at *now*."""
        self._sample(now - ticket.sent_at)
        if info is not None:
            self._stated(info, now)
            return
        if ticket.sent_at < self._cut_at:
            # Sent before the last cut, answered after it (a 429 comes back sooner than an
            # acceptance that the server took time over): no rise, but a fuller window than the
            # level was accepted, under the count that was refused.
            if self.level is not None and self.level <= ticket.n_before < self._ceiling:
                self.level = float(ticket.n_before + 1)
            return
        self._best_ok = max(self._best_ok, ticket.n_before)
        self._foreign = False
        if self.level is None:
            if self._grown_at is None:
                self._grown_at = ticket.sent_at
            factor = 2.0 ** ((now - self._grown_at) / DOUBLING)
            self._pace = min(self.max_rate, self._pace * factor)
            self._grown_at = now
        elif self._rose(ticket):
            # A window fuller than the known level was accepted (every grant of a probe, or one
            # RISE_MARGIN past the level): the limit rose. Search again.
            self._pace = self.pace
            self.level = None
            self._grown_at = now

    def on_throttle(
        self,
        ticket: Ticket,
        now: float,
        retry_after: float | None = None,
        info: RateInfo | None = None,
    ) -> None:
        """A request was refused with 429 at *now*; *retry_after* in seconds if the server said."""
        self._sample(now - ticket.sent_at)
        if info is not None:
            self._stated(info, now)
        if ticket.sent_at < self._cut_at:
            # Sent before we reacted to an earlier 429: the same overload, already answered.
            self._hold(now, retry_after)
            return
        if ticket.probe and self.level is not None and self.stated is None:
            # A failed probe: the window is full at the level, as known. A few requests past a
            # window our own log accounts for: the schedule slides by them (and the log must
            # say there is room), rather than waiting for a whole-second Retry-After.
            if ticket.probe == self._probe and self._probe_left >= 0:
                self._probe_extras = 0
                self._probe_left = -1
                slide = ticket.sent_at + self._probe_size / self.pace
                self.resume_at = max(self.resume_at, self._drained(now), slide)
            return
        refused = ticket.n_before
        if self.stated is None and not self._foreign and refused < self._known() * FOREIGN_SHARE:
            self._foreign_refusal(now, retry_after)
            return
        self._foreign = False
        if self.stated is not None:
            level = max(1.0, min(self.stated.rate, float(refused)))
        elif self._best_ok < 0:
            level = max(1.0, math.floor(refused * BETA))  # nothing accepted since the last cut
        elif self._best_ok < refused:
            level = float(self._best_ok + 1)  # the count just below the refused one
        else:
            level = max(1.0, float(refused))  # a count once accepted is refused: it fell
        self.level = min(level, self.max_rate * (1 + SLACK))
        self._cut_at = now
        self._probe_extras = 0
        self._ceiling = refused
        self._best_ok = -1
        self._hold(now, retry_after)

    # -- inside ------------------------------------------------------------------------------
    def _known(self) -> float:
        """The window our own requests are known to fill: the level, or the best accepted."""
        if self.level is not None:
            return self.level
        return float(max(self._best_ok + 1, 1))

    def _foreign_refusal(self, now: float, retry_after: float | None) -> None:
        """A 429 our own window does not explain (it holds under a quarter of :meth:`_known`).

        The command just before this one, or another client on the same key, left its own
        requests in the window; our count says nothing about the limit (taken at its word, a
        refusal at ``n_before == 0`` would set the level to 1 and hold a whole run there). The
        pace is halved, as after any unexplained loss, and everyone waits out a whole window
        (or ``Retry-After``), since our log cannot say when the server's drains. A second such
        refusal with nothing accepted between is taken at its word.
        """
        self._foreign = True
        if self.level is None:
            self._pace = max(self._pace * BETA, 0.5)
            self._grown_at = None
        else:
            self.level = max(1.0, math.floor(self.level * BETA))
        self._cut_at = now
        self._probe_extras = 0
        self._best_ok = -1
        self.resume_at = max(
            self.resume_at, now + (retry_after if retry_after is not None else MAX_DRAIN)
        )

    def _stated(self, info: RateInfo, now: float) -> None:
        self.stated = info
        if info.remaining is not None and info.remaining <= 0:
            self.resume_at = max(self.resume_at, now + min(info.reset or 1.0, MAX_DRAIN * 60))

    def _hold(self, now: float, retry_after: float | None) -> None:
        if retry_after is not None:
            self.resume_at = max(self.resume_at, now + max(retry_after, 0.0))
            return
        self.resume_at = max(self.resume_at, self._drained(now))

    def _rose(self, ticket: Ticket) -> bool:
        """Whether an accepted *ticket* proves the limit above ``level``."""
        assert self.level is not None
        if not ticket.probe:
            return ticket.n_before >= self.level + RISE_MARGIN
        if ticket.probe != self._probe or self._probe_left <= 0 or self._probe_extras:
            return False
        self._probe_left -= 1
        self._probe_top = max(self._probe_top, ticket.n_before)
        # Every grant of it accepted, and one of them did find the window at the level.
        return self._probe_left == 0 and self._probe_top >= self.level

    def _window(self, now: float) -> int:
        """Our own requests sent in the second before *now*."""
        sent = self._sent
        while sent and sent[0] <= now - 1.0:
            sent.popleft()
        return len(sent)

    def _drained(self, now: float) -> float:
        """When our window will hold fewer than ``level`` grants: the server's, mirrored."""
        level = self.level if self.stated is None else self.stated.rate
        keep = max(int(level or 1) - 1, 0)
        sent = [t for t in self._sent if t > now - 1.0]
        if len(sent) <= keep:
            return now
        # The (len - keep)-th oldest must leave; SLACK covers the way to the server.
        return min(sent[len(sent) - keep - 1] + 1.0 + SLACK, now + MAX_DRAIN)

    def _sample(self, latency: float) -> None:
        if latency < 0:
            return
        if self.latency is None:
            self.latency = latency
        else:
            self.latency += LATENCY_WEIGHT * (latency - self.latency)


class AutoLimiter:
    """``--rate auto`` as the engine sees a limiter: :class:`AutoPace` driving a
    :class:`~importer.api.limiter.PacedLimiter`, plus the in-flight cap the pace needs.

    The engine calls :meth:`try_acquire` or :meth:`acquire` before each request,
    :meth:`granted` once it has its slot (the ticket goes with the request), and
    :meth:`answered` with the answer (None when none came); a 429 is handled there, with its
    ticket, so :meth:`throttled` (the fixed limiter's 429 hook) does nothing here.
    """

    def __init__(
        self,
        policy: AutoPace,
        limiter: PacedLimiter,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.policy = policy
        self._limiter = limiter
        self._clock = clock
        self._wall_clock = wall_clock
        self._in_flight = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        limiter.wakeable = True  # a probe's grants go out at once, not at the next slots
        self._retune()

    @property
    def pace(self) -> float:
        """Grants per second now."""
        return self.policy.pace

    @property
    def in_flight(self) -> int:
        """Requests the pace may have in flight now."""
        return self.policy.in_flight()

    def try_acquire(self) -> bool:
        if self._in_flight >= self.in_flight or not self._limiter.try_acquire():
            return False
        self._in_flight += 1
        return True

    async def acquire(self) -> None:
        while self._in_flight >= self.in_flight:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
        self._in_flight += 1
        try:
            await self._limiter.acquire()
        except BaseException:
            self._release()
            raise

    def granted(self) -> Ticket:
        now = self._clock()
        ticket = self.policy.on_sent(now)
        if self.policy.wants_probe(now):
            self._limiter.allow_one_more()
        return ticket

    def answered(self, ticket: Ticket | None, answer: Answer | None) -> None:
        if ticket is None:
            return
        if answer is not None:
            now = self._clock()
            info = rate_headers(dict(answer.limits), self._wall_clock()) if answer.limits else None
            if answer.status == 429:
                retry_after = parse_retry_after(answer.retry_after)
                self.policy.on_throttle(ticket, now, retry_after, info)
            else:
                self.policy.on_success(ticket, now, info)
            self._retune()
        self._release()

    def throttled(self, retry_after: float | None) -> None:
        """Nothing: :meth:`answered` met the 429 with its ticket."""

    def found(self) -> float | None:
        """The requests a window is known to accept, to remember for the next run."""
        if self.policy.stated is not None:
            return self.policy.stated.rate
        return self.policy.level

    def _release(self) -> None:
        """One request fewer in flight: wake as many waiters as there is room for."""
        self._in_flight -= 1
        room = self.in_flight - self._in_flight
        for waiter in list(self._waiting)[: max(room, 0)]:
            if not waiter.done():
                waiter.set_result(None)

    def _retune(self) -> None:
        self._limiter.retune(self.policy.pace, self.policy.burst, self.policy.resume_at)
