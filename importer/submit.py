"""Send one record to the API: pure decisions and one retry policy (the pool is in `pool`).

The decisions are plain functions (:func:`interpret`, :func:`interpret_lookup`, :func:`settle`,
:func:`parse_retry_after`, :func:`backoff_ceiling`); :class:`Submitter` only awaits, retries and
counts. One record goes like this::

    unsure? ── GET ?code= ── ours ─────────────────────────────> created (its id adopted)
       │                 ├── another entitlement ──────────────> rejected
       │ no              └── absent ──┐
       └──────────────────────────────┴─ POST ── 201 ──────────> created
                                               ├ 422/4xx ──────> rejected (a retry: GET first)
                                               ├ 401/403 ──────> AuthError: the run stops
                                               ├ 429 ──────────> everyone pauses, retry (free)
                                               └ 5xx/timeout ──> backoff, retry, now unsure

No code is ever created twice: whenever an earlier request for a record may have reached the API
(timeout, dropped connection, 5xx, or a crash while the journal said ``sending``), the code is
looked up before it is sent again, and a "taken" answer to a retry is settled by a lookup too.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from importer.config import SendConfig
from importer.errors import (
    ApiUnavailableError,
    AuthError,
    Interrupted,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransientApiError,
)
from importer.http import Answer, Sender
from importer.limiter import PacedLimiter, Sleep
from importer.models import Outcome, Record, Status, entitlement_field

#: 429s one record may meet before it is left `failed`; they do not use up `attempts`.
MAX_THROTTLED = 100
#: The longest pause one ``Retry-After`` may impose, so a bogus date cannot stall a run for good.
MAX_RETRY_AFTER = 600.0

_DELAY_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from *now* (wall clock): delay-seconds or an HTTP date.

    None when absent or unreadable; otherwise between 0 and :data:`MAX_RETRY_AFTER`.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are always GMT ("-0000" parses as naive)
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_ceiling(failures: int, initial: float, maximum: float) -> float:
    """The longest full-jitter wait after the `failures`-th failure: ``initial x 2^(n-1)``, capped.

    The wait itself is drawn uniformly from ``[0, ceiling]`` ("full jitter"), so workers that
    failed together do not come back together.
    """
    return min(maximum, initial * 2.0 ** min(max(failures - 1, 0), 64))


def _message(body: Any, status: int) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        return message
    if isinstance(body, str) and body.strip():
        return body.strip()
    return f"HTTP {status}"


def interpret(answer: Answer) -> Outcome:
    """Classify the answer to a create: an ``Outcome`` for 2xx with a code, else the error.

    2xx without a code object, and 5xx, may have been applied: :class:`ServerError`. 3xx means
    ``api.url`` is wrong (a POST must never follow it): the run stops.
    """
    status = answer.status
    if 200 <= status < 300:
        body = answer.body.get("response") if isinstance(answer.body, dict) else None
        if isinstance(body, dict) and body.get("_id"):
            return Outcome(
                Status.CREATED,
                api_id=str(body["_id"]),
                nice_code=str(body.get("nice_code") or ""),
                http_status=status,
            )
        raise ServerError(f"HTTP {status} without a created code", http_status=status)
    message = _message(answer.body, status)
    if status in (401, 403):
        raise AuthError(f"the API refused the key (HTTP {status}: {message})")
    if status == 429:
        raise RateLimitedError(message, retry_after=parse_retry_after(answer.retry_after))
    if status >= 500:
        raise ServerError(message, http_status=status)
    if status < 400:
        raise ApiUnavailableError(f"the API answered HTTP {status} (a redirect?): check api.url")
    raise RejectedError(message, http_status=status)


def interpret_lookup(record: Record, answer: Answer) -> Outcome | None:
    """Classify the answer to ``GET /redemption_codes?code=``: :func:`settle`'s verdict or an error.

    An answer that settles nothing (another 4xx, a 200 without a list) is a :class:`ServerError`:
    the lookup is tried again later, never taken for "absent".
    """
    status = answer.status
    if status == 200:
        items = answer.body.get("response") if isinstance(answer.body, dict) else None
        if isinstance(items, list):
            return settle(record, items)
        raise ServerError("lookup answered HTTP 200 without a list of codes", http_status=200)
    if status in (401, 403, 429) or status >= 500 or 300 <= status < 400:
        interpret(answer)  # raises the same error a create would
    raise ServerError(
        f"lookup failed (HTTP {status}: {_message(answer.body, status)})", http_status=status
    )


def settle(record: Record, found: Sequence[Any]) -> Outcome | None:
    """Decide from a lookup: same entitlement → created; another → rejected; absent → None."""
    for item in found:
        if not isinstance(item, dict):
            continue
        if str(item.get("code", "")).casefold() != record.code.casefold():
            continue
        field_name = entitlement_field(record.kind)
        if str(item.get(field_name) or "").lower() == record.entitlement_id.lower():
            return Outcome(
                Status.CREATED,
                api_id=str(item.get("_id", "")),
                nice_code=str(item.get("nice_code") or ""),
                http_status=200,
            )
        return Outcome(
            Status.REJECTED,
            http_status=422,
            error=f"code {record.code} already exists on the API for another entitlement",
        )
    return None


@dataclass
class Tally:
    """Counters for the summary."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    lookups: int = 0


@dataclass
class _Attempts:
    """One record's progress through :meth:`Submitter.send`."""

    #: An earlier request for it may have been applied: look the code up before the next POST.
    unsure: bool = False
    #: It was unsure when this run began (an earlier run may have created it).
    doubted: bool = False
    #: POSTs sent, not counting those refused with 429.
    posts: int = 0
    #: Failed tries (5xx, timeouts, connection errors, lookups that settled nothing).
    failures: int = 0
    throttled: int = 0
    #: ``Retry-After`` of the last 5xx, if it had one: the next try waits at least that long.
    retry_after: float | None = None


class Submitter:
    """Creates one record's code, retrying transient errors with full-jitter backoff.

    Every request (POSTs and lookups alike) takes a slot from the limiter. `sleep` is used for the
    backoff waits and `rng` draws their jitter; both are injected so tests never wait. Setting
    `stopping` interrupts waits for a slot or a backoff at once; requests already sent finish.
    """

    def __init__(
        self,
        sender: Sender,
        limiter: PacedLimiter,
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

    async def send(self, record: Record, *, unsure: bool = False) -> Outcome:
        """Create *record*'s code; `unsure` means an earlier run may already have.

        Returns ``created``, ``rejected`` or ``failed``; ``pending`` (or ``sending`` when a request
        may have been applied) if the run is stopping. Raises :class:`~importer.errors.StopRun`
        when the whole run must stop (key refused, API unavailable, redirect).
        """
        state = _Attempts(unsure=unsure, doubted=unsure)
        try:
            try:
                # Most records take one request: the retry machinery only starts on a failure.
                outcome = await self._attempt(record, state)
            except TransientApiError as exc:
                outcome = await self._retry(record, state, exc)
            return outcome.with_attempts(state.posts)
        except RejectedError as exc:
            return Outcome(
                Status.REJECTED,
                error=exc.message,
                http_status=exc.http_status,
                attempts=state.posts,
            )
        except TransientApiError as exc:
            return Outcome(
                Status.FAILED,
                error=exc.message,
                http_status=exc.http_status,
                attempts=state.posts,
                unsure=state.unsure,
            )
        except Interrupted:
            status = Status.SENDING if state.unsure else Status.PENDING
            return Outcome(status, error="interrupted", attempts=state.posts, unsure=state.unsure)

    async def _retry(self, record: Record, state: _Attempts, error: TransientApiError) -> Outcome:
        """Try again after a first try failed with *error*, waiting before each try."""
        if self._exhausted(state):
            raise error
        await self._pause(self._delay(state, error))
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientApiError),
            stop=lambda _: self._exhausted(state),
            wait=lambda retry_state: self._wait(state, retry_state),
            sleep=self._pause,
            reraise=True,
        )
        async for attempt in retrying:
            self.tally.retries += 1
            with attempt:
                return await self._attempt(record, state)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _exhausted(self, state: _Attempts) -> bool:
        return state.failures >= self._config.attempts or state.throttled >= MAX_THROTTLED

    def _wait(self, state: _Attempts, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return self._delay(state, exc)

    def _delay(self, state: _Attempts, exc: BaseException | None) -> float:
        if isinstance(exc, RateLimitedError):
            return 0.0  # the limiter already pauses every worker until Retry-After
        ceiling = backoff_ceiling(
            state.failures, self._config.backoff_initial, self._config.backoff_max
        )
        # A 503 from a proxy may say when to come back; honour it as a floor.
        return max(self._rng.uniform(0.0, ceiling), state.retry_after or 0.0)

    async def _attempt(self, record: Record, state: _Attempts) -> Outcome:
        """One try; keeps the counters, the 429 pause and the run's consecutive failures."""
        try:
            return await self._try(record, state)
        except RateLimitedError as exc:
            state.throttled += 1
            self.tally.throttled += 1
            self._limiter.throttled(exc.retry_after)
            raise
        except TransientApiError as exc:
            state.failures += 1
            state.unsure = state.unsure or exc.maybe_sent
            self._consecutive_failures += 1
            if self._consecutive_failures >= self._config.max_consecutive_failures:
                raise ApiUnavailableError(
                    f"stopped after {self._consecutive_failures} consecutive failed requests; "
                    f"the API looks unavailable (last: {exc.message})"
                ) from None
            raise

    async def _try(self, record: Record, state: _Attempts) -> Outcome:
        if state.unsure:
            found = await self._lookup(record, state)
            if found is not None:
                return found
            state.unsure = False
        answer = await self._request(state, lambda: self._post(record, state))
        if answer.status == 429:
            state.posts -= 1  # refused before anything was done: not an attempt
        try:
            return interpret(answer)
        except RejectedError:
            if state.posts > 1 or state.doubted:
                # Maybe our own earlier request, answered "already taken": only a lookup knows.
                found = await self._lookup(record, state)
                if found is not None:
                    return found
            raise

    async def _post(self, record: Record, state: _Attempts) -> Answer:
        state.posts += 1
        return await self._sender.create(record.payload())

    async def _lookup(self, record: Record, state: _Attempts) -> Outcome | None:
        self.tally.lookups += 1
        answer = await self._request(state, lambda: self._sender.find(record.code))
        return interpret_lookup(record, answer)

    async def _request(self, state: _Attempts, call: Callable[[], Awaitable[Answer]]) -> Answer:
        """Make one request in its rate-limit slot."""
        if self.stopping.is_set():
            raise Interrupted("stopping")
        if not self._limiter.try_acquire():
            await self._unless_stopping(self._limiter.acquire)
        self.tally.requests += 1
        state.retry_after = None
        answer = await call()
        if answer.status >= 500:
            state.retry_after = parse_retry_after(answer.retry_after)
        elif answer.status != 429:
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
