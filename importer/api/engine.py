"""The request engine: one runner for every operation (create, update, delete, read).

An operation (:mod:`importer.api.ops`) is a pure protocol: a generator that yields the requests one
try of it makes and receives their answers (:class:`Operation.steps`), plus what a row becomes
when the engine gives up or stops. The :class:`Runner` owns everything else, the same for every
operation::

    perform(op, item) ── one try: op.steps ⇄ request() ── result ─────────────> done
                              │                  │
                              │                  └ limiter slot, stop check, tally, timeline
                              └─ TransientApiError ─ next_wait() ─ wait ─> try again (unsure
                                                         │                  if it may have
                                                         └ None ─> op.gave_up  been applied)
    PermanentApiError ─> op.gave_up          Interrupted ─> op.stopped        StopRun ─> raised

:func:`next_wait` is the pure "what next" decision: full-jitter exponential backoff for 5xx,
timeouts and connection errors (floored by a ``Retry-After``), no backoff for 429 (the limiter
pauses every worker instead), and when to give up. A run of consecutive failures across all
workers stops the whole run (:class:`~importer.errors.ApiUnavailableError`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from importer.api.http import Sender
from importer.api.limiter import Sleep
from importer.api.wire import Answer, Request, parse_retry_after
from importer.config import SendConfig
from importer.errors import (
    ApiError,
    ApiUnavailableError,
    Interrupted,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from importer.models import Tick

#: 429s one item may meet before it is given up; they do not use up `attempts`.
MAX_THROTTLED = 100

ItemT_contra = TypeVar("ItemT_contra", contravariant=True)
ResultT_co = TypeVar("ResultT_co", covariant=True)
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

#: One try of an operation: yields requests, receives answers, returns its result.
Steps = Generator[Request, Answer, ResultT_co]


class Limiter(Protocol):
    """What the runner needs of a limiter: the fixed
    :class:`~importer.api.limiter.PacedLimiter` or ``--rate auto``'s
    :class:`~importer.api.pacing.AutoLimiter`."""

    @property
    def pace(self) -> float: ...

    def try_acquire(self) -> bool: ...

    async def acquire(self) -> None: ...

    def granted(self) -> Any: ...

    def answered(self, ticket: Any, answer: Answer | None) -> None: ...

    def throttled(self, retry_after: float | None) -> None: ...


@dataclass
class Attempt:
    """One item's progress through :meth:`Runner.perform`; operations read and set `unsure`."""

    #: An earlier request may have been applied: an operation that cares (create) looks first.
    unsure: bool = False
    #: It was unsure when this run began (an earlier run may already have done it).
    doubted: bool = False
    #: Write requests sent, not counting those refused with 429: the results' `attempts`.
    writes: int = 0
    #: Failed tries (5xx, timeouts, connection errors, answers that settled nothing).
    failures: int = 0
    throttled: int = 0
    #: ``Retry-After`` of the last 5xx, if it had one: the next try waits at least that long.
    retry_after: float | None = None


class Operation(Protocol[ItemT_contra, ResultT_co]):
    """What one kind of work does with one item; pure, so tests drive it with canned answers."""

    def steps(self, item: ItemT_contra, state: Attempt) -> Steps[ResultT_co]:
        """One try: yield each request, receive its answer; raise the project's API errors."""
        ...

    def gave_up(self, item: ItemT_contra, state: Attempt, error: ApiError) -> ResultT_co:
        """The result when the API refused for good, or retries ran out (may raise StopRun)."""
        ...

    def stopped(self, item: ItemT_contra, state: Attempt) -> ResultT_co:
        """The result when the run stopped before the item was done."""
        ...


def backoff_ceiling(failures: int, initial: float, maximum: float) -> float:
    """The longest full-jitter wait after the `failures`-th failure: ``initial x 2^(n-1)``, capped.

    The wait itself is drawn uniformly from ``[0, ceiling]`` ("full jitter"), so workers that
    failed together do not come back together.
    """
    return min(maximum, initial * 2.0 ** min(max(failures - 1, 0), 64))


def next_wait(
    state: Attempt,
    error: TransientApiError,
    config: SendConfig,
    jitter: Callable[[float], float],
) -> float | None:
    """Seconds to wait before trying *error*'s item again, or None to give up.

    `state` already counts *error*; `jitter(ceiling)` draws the wait from ``[0, ceiling]``.
    """
    if isinstance(error, RateLimitedError):
        return None if state.throttled >= MAX_THROTTLED else 0.0
    if state.failures >= config.attempts or state.throttled >= MAX_THROTTLED:
        return None
    ceiling = backoff_ceiling(state.failures, config.backoff_initial, config.backoff_max)
    # A 503 from a proxy may say when to come back; honour it as a floor.
    return max(jitter(ceiling), state.retry_after or 0.0)


class Tally:
    """What the engine did: counters for the summary and a per-second timeline."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start: float | None = None
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        self.failures = 0
        self.methods: Counter[str] = Counter()
        #: Requests made only to prove api.url is the API (one per command that sends).
        self.probes = 0
        self._seconds: dict[int, list[int]] = {}
        #: The limiter's pace at each second's last request.
        self._paces: dict[int, float] = {}
        self._second = 0

    @property
    def lookups(self) -> int:
        """GET requests (lookups and reads), not counting the probe of api.url."""
        return self.methods["GET"] - self.probes

    def _bucket(self) -> list[int]:
        now = self._clock()
        if self._start is None:
            self._start = now
        second = self._second = int(now - self._start)
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = [0, 0, 0, 0]
        return bucket

    def sent(self, method: str, pace: float = 0.0) -> None:
        self.requests += 1
        self.methods[method] += 1
        self._bucket()[0] += 1
        self._paces[self._second] = pace

    def retried(self) -> None:
        self.retries += 1
        self._bucket()[1] += 1

    def was_throttled(self) -> None:
        self.throttled += 1
        self._bucket()[2] += 1

    def failed(self) -> None:
        self.failures += 1
        self._bucket()[3] += 1

    def timeline(self) -> list[Tick]:
        """Every second from the first request to the last, quiet seconds included."""
        if not self._seconds:
            return []
        quiet = [0, 0, 0, 0]
        ticks = []
        for second in range(max(self._seconds) + 1):
            sent, retries, throttled, failures = self._seconds.get(second, quiet)
            pace = self._paces.get(second, 0.0)
            ticks.append(Tick(second, sent, retries, throttled, failures, pace))
        return ticks


class Runner:
    """Performs operations on items: rate limit, retries, stop and failure count, for all.

    Every request takes a slot from the limiter. `sleep` is used for backoff waits and `rng`
    draws their jitter; both are injected so tests never wait. Setting `stopping` interrupts
    waits for a slot or a backoff at once; requests already sent finish.
    """

    def __init__(
        self,
        sender: Sender,
        limiter: Limiter,
        config: SendConfig,
        *,
        sleep: Sleep = asyncio.sleep,
        stopping: asyncio.Event | None = None,
        tally: Tally | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._sender = sender
        self._limiter = limiter
        self._config = config
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.stopping = stopping or asyncio.Event()
        self.tally = tally if tally is not None else Tally()
        self._consecutive_failures = 0

    async def perform(
        self, op: Operation[ItemT, ResultT], item: ItemT, *, unsure: bool = False
    ) -> ResultT:
        """Do *op* for *item*; `unsure` means an earlier run may already have done it.

        Raises :class:`~importer.errors.StopRun` when the whole run must stop (key refused,
        API unavailable, api.url not the API).
        """
        state = Attempt(unsure=unsure, doubted=unsure)
        try:
            try:
                # Most items take one try: the retry machinery only starts on a failure.
                return await self._attempt(op, item, state)
            except TransientApiError as exc:
                return await self._retry(op, item, state, exc)
        except (PermanentApiError, TransientApiError) as exc:
            return op.gave_up(item, state, exc)
        except Interrupted:
            return op.stopped(item, state)

    async def _retry(
        self,
        op: Operation[ItemT, ResultT],
        item: ItemT,
        state: Attempt,
        error: TransientApiError,
    ) -> ResultT:
        """Try again after a first try failed with *error*, waiting before each try."""
        wait = self._next_wait(state, error)
        if wait is None:
            raise error
        await self._pause(wait)
        # tenacity asks `wait` and `stop` in turn after each failure; both read one decision.
        decided: dict[int, float | None] = {}

        def decide(retry_state: RetryCallState) -> float | None:
            number = retry_state.attempt_number
            if number not in decided:
                exc = retry_state.outcome.exception() if retry_state.outcome else None
                assert isinstance(exc, TransientApiError)
                decided[number] = self._next_wait(state, exc)
            return decided[number]

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientApiError),
            stop=lambda retry_state: decide(retry_state) is None,
            wait=lambda retry_state: decide(retry_state) or 0.0,
            sleep=self._pause,
            reraise=True,
        )
        async for attempt in retrying:
            self.tally.retried()
            with attempt:
                return await self._attempt(op, item, state)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _next_wait(self, state: Attempt, error: TransientApiError) -> float | None:
        return next_wait(state, error, self._config, lambda ceiling: self._rng.uniform(0, ceiling))

    async def _attempt(self, op: Operation[ItemT, ResultT], item: ItemT, state: Attempt) -> ResultT:
        """One try; keeps the counters, the 429 pause and the run's consecutive failures."""
        steps = op.steps(item, state)
        try:
            request = next(steps)
            while True:
                answer = await self._request(state, request)
                request = steps.send(answer)
        except StopIteration as done:
            result: ResultT = done.value
            return result
        except RateLimitedError as exc:
            state.throttled += 1
            self.tally.was_throttled()
            self._limiter.throttled(exc.retry_after)
            raise
        except TransientApiError as exc:
            state.failures += 1
            self.tally.failed()
            state.unsure = state.unsure or exc.maybe_sent
            self._consecutive_failures += 1
            if self._consecutive_failures >= self._config.max_consecutive_failures:
                raise ApiUnavailableError(
                    f"stopped after {self._consecutive_failures} consecutive failed requests; "
                    f"the API looks unavailable (last: {exc.message})"
                ) from None
            raise
        finally:
            steps.close()

    async def _request(self, state: Attempt, request: Request) -> Answer:
        """Make one request in its rate-limit slot."""
        if self.stopping.is_set():
            raise Interrupted("stopping")
        limiter = self._limiter
        if not limiter.try_acquire():
            await self._unless_stopping(limiter.acquire)
        ticket = limiter.granted()
        self.tally.sent(request.method, limiter.pace)
        state.retry_after = None
        if request.writes:
            state.writes += 1
        try:
            answer = await self._sender.send(request)
        except BaseException:
            limiter.answered(ticket, None)
            raise
        limiter.answered(ticket, answer)
        if answer.status == 429:
            if request.writes:
                state.writes -= 1  # refused before anything was done: not an attempt
        elif answer.status >= 500:
            state.retry_after = parse_retry_after(answer.retry_after)
        else:
            self._consecutive_failures = 0
        return answer

    async def _pause(self, seconds: float) -> None:
        """The backoff sleep, cut short by a stop."""
        if seconds > 0:
            await self._unless_stopping(lambda: self._sleep(seconds))
        elif self.stopping.is_set():
            raise Interrupted("stopping")

    async def _unless_stopping(self, wait: Callable[[], Awaitable[None]]) -> None:
        """Await ``wait()``; raise Interrupted if the run is stopping, before or meanwhile."""
        if self.stopping.is_set():
            raise Interrupted("stopping")
        waiting = asyncio.ensure_future(wait())
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait((waiting, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            stop.cancel()
        if waiting.done() and not waiting.cancelled():
            waiting.result()
        if self.stopping.is_set():
            raise Interrupted("stopping")
