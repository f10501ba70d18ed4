"""A discrete-event simulation of ``--rate auto`` against an API with a hidden limit.

The server counts arrivals in a sliding one-second window, refused ones included, and refuses
an arrival when the window already holds ``limit`` (which may change at ``change_at``). As in the
sandbox, ``latency`` is the server's time on an *accepted* request, after the rate check: a 429
comes back after the network round trip only (``network``), ahead of acceptances sent before it,
and its ``Retry-After`` is the sandbox's whole second. The
client is the GCRA limiter (``1 / pace`` apart, ``burst - 1`` ahead), paced by
:class:`pacing.AutoPace`, with the in-flight cap it gives; refused items are sent again. Time is
a number; nothing sleeps.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from importer.api.pacing import DEFAULT_MAX_RATE, AutoPace, Ticket
from importer.api.rate_headers import RateInfo, rate_headers

EARLY = 1e-9


@dataclass(frozen=True)
class Scenario:
    """One run: `n` items against `limit`/s; an accepted request takes `latency` seconds at the
    server (the sandbox's ``latency`` fault), every request `network` seconds there and back."""

    limit: float
    n: int
    latency: float = 0.05
    network: float = 0.002
    change_at: float | None = None
    limit_after: float | None = None
    headers: bool = False
    #: The server sends ``Retry-After`` (whole seconds until the window has room) with a 429.
    retry_after: bool = False
    remembered: float | None = None
    max_rate: float = DEFAULT_MAX_RATE
    max_in_flight: int = 64
    jitter: float = 0.1
    seed: int = 1
    #: Requests of someone else's (the command before this one) in the server's window at the
    #: start, sent evenly over the second before it.
    leftover: int = 0

    def limit_at(self, t: float) -> float:
        if self.change_at is not None and self.limit_after is not None and t >= self.change_at:
            return self.limit_after
        return self.limit

    def least_time(self) -> float:
        """The time N requests take at exactly the limit, following its change."""
        if self.change_at is None or self.limit_after is None:
            return self.n / self.limit
        before = self.limit * self.change_at
        if self.n <= before:
            return self.n / self.limit
        return self.change_at + (self.n - before) / self.limit_after


@dataclass
class Flight:
    """A request on its way: the ticket, then the server's verdict."""

    ticket: Ticket
    ok: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: str | None = None


@dataclass
class Result:
    elapsed: float
    sent: int
    refused: int
    least: float
    #: (time, pace) after every answer, for plots and the report.
    paces: list[tuple[float, float]] = field(default_factory=list)
    #: Accepted requests per whole second.
    per_second: dict[int, int] = field(default_factory=dict)
    level: float | None = None

    @property
    def ratio(self) -> float:
        return self.elapsed / self.least

    @property
    def refused_share(self) -> float:
        return self.refused / self.sent if self.sent else 0.0

    def rate_between(self, start: int, end: int) -> float:
        return sum(self.per_second.get(s, 0) for s in range(start, end)) / (end - start)


def simulate(sc: Scenario) -> Result:
    """Run *sc* to the last item's success."""
    rng = random.Random(sc.seed)
    policy = AutoPace(
        remembered=sc.remembered, max_rate=sc.max_rate, max_in_flight=sc.max_in_flight
    )
    events: list[tuple[float, int, str, Flight | None]] = []
    seq = 0
    window: deque[float] = deque(-1.0 + (k + 1) / sc.leftover for k in range(sc.leftover))
    now = 0.0
    tat = -math.inf
    in_flight = 0
    done = 0
    sent = 0
    refused = 0
    result = Result(0.0, 0, 0, sc.least_time())
    wake_at = math.inf

    def push(t: float, kind: str, flight: Flight | None = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, flight))

    def one_way() -> float:
        return sc.network / 2 * rng.uniform(1 - sc.jitter, 1 + sc.jitter)

    def serving() -> float:
        return sc.latency * rng.uniform(1 - sc.jitter, 1 + sc.jitter)

    def grant() -> None:
        nonlocal tat, in_flight, sent
        interval = 1.0 / policy.pace
        tat = max(tat, now) + interval
        ticket = policy.on_sent(now)
        in_flight += 1
        sent += 1
        push(now + one_way(), "arrive", Flight(ticket))

    def try_grants() -> None:
        nonlocal wake_at, tat
        while done + in_flight < sc.n and in_flight < policy.in_flight():
            if now < policy.resume_at:
                schedule(policy.resume_at)
                return
            interval = 1.0 / policy.pace
            earliest = tat - (policy.burst - 1) * interval
            if now + EARLY < earliest:
                schedule(earliest)
                return
            grant()
            if policy.wants_probe(now):
                tat -= interval  # PacedLimiter.allow_one_more

    def schedule(t: float) -> None:
        nonlocal wake_at
        if t < wake_at or wake_at <= now:
            wake_at = t
            push(t, "wake")

    try_grants()
    while done < sc.n:
        t, _, kind, flight = heapq.heappop(events)
        now = t
        if kind == "wake":
            if t >= wake_at:
                wake_at = math.inf
            try_grants()
            continue
        assert flight is not None
        if kind == "arrive":
            while window and window[0] <= now - 1.0:
                window.popleft()
            count = len(window)
            limit = sc.limit_at(now)
            ok = count < limit
            window.append(now)
            headers: dict[str, str] = {}
            if sc.headers:
                reset = (window[0] + 1.0 - now) if window else 0.0
                headers = {
                    "X-RateLimit-Limit": f"{limit:g}",
                    "X-RateLimit-Remaining": str(max(0, int(limit) - count - 1)),
                    "X-RateLimit-Reset": f"{max(reset, 0.0):.3f}",
                }
            ra = "1" if not ok and sc.retry_after else None
            flight.ok, flight.headers, flight.retry_after = ok, headers, ra
            push(now + (serving() if ok else 0.0) + one_way(), "answer", flight)
            continue
        ok, ticket, ra = flight.ok, flight.ticket, flight.retry_after
        in_flight -= 1
        info: RateInfo | None = rate_headers(flight.headers, now) if flight.headers else None
        if ok:
            done += 1
            policy.on_success(ticket, now, info)
            result.per_second[int(now)] = result.per_second.get(int(now), 0) + 1
        else:
            refused += 1
            policy.on_throttle(ticket, now, None if ra is None else float(ra), info)
        result.paces.append((now, policy.pace))
        try_grants()
    result.elapsed = now
    result.sent = sent
    result.refused = refused
    result.level = policy.level
    return result
