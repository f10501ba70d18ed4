"""Send records to the API: pure answer classification, one retry policy, a worker pool.

The decisions are plain functions (:func:`interpret`, :func:`settle`); :class:`Submitter` only
awaits, retries and counts. No code is ever created twice: whenever an earlier request for a
record may have reached the API (timeout, dropped connection, 5xx, or a crash while the journal
said ``sending``), the code is looked up before it is sent again.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_random_exponential

from importer.config import SendConfig
from importer.errors import (
    ApiUnavailableError,
    AuthError,
    Interrupted,
    RateLimitedError,
    RejectedError,
    ServerError,
    StopRun,
    TransientApiError,
)
from importer.http import Answer, Sender
from importer.limiter import PacedLimiter, Sleep
from importer.models import Outcome, Record, Status, entitlement_field

#: 429s one record may meet before it is left `failed`; they do not use up `attempts`.
MAX_THROTTLED = 100


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: an integer, or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def _message(body: Any, status: int) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body, str) and body.strip():
        return body.strip()
    return f"HTTP {status}"


def interpret(answer: Answer) -> Outcome:
    """Classify the answer to a create: an ``Outcome`` for 201, else the matching error."""
    status = answer.status
    if status in (200, 201):
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
    if 300 <= status < 400:
        raise ApiUnavailableError(f"the API answered HTTP {status} (a redirect): check api.url")
    raise RejectedError(message, http_status=status)


def settle(record: Record, found: Sequence[Any]) -> Outcome | None:
    """Decide from a lookup: same entitlement → created; another → rejected; absent → None."""
    for item in found:
        if not isinstance(item, dict) or str(item.get("code", "")).upper() != record.code.upper():
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
    sent: int = 0
    failures: int = 0
    throttled: int = 0
    unsure: bool = False
    last: TransientApiError | None = field(default=None)


class Submitter:
    """Creates one record's code, retrying transient errors with full-jitter backoff."""

    def __init__(
        self,
        sender: Sender,
        limiter: PacedLimiter,
        config: SendConfig,
        *,
        sleep: Sleep = asyncio.sleep,
        stopping: asyncio.Event | None = None,
        tally: Tally | None = None,
    ) -> None:
        self._sender = sender
        self._limiter = limiter
        self._config = config
        self._sleep = sleep
        self._backoff = wait_random_exponential(
            multiplier=config.backoff_initial, max=config.backoff_max
        )
        self.stopping = stopping or asyncio.Event()
        self.tally = tally if tally is not None else Tally()
        self._consecutive_failures = 0

    async def send(self, record: Record, *, unsure: bool = False) -> Outcome:
        """Create *record*'s code; `unsure` means an earlier run may already have."""
        state = _Attempts(unsure=unsure)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientApiError),
            stop=lambda _: self._exhausted(state),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(record, state)
        except RejectedError as exc:
            return Outcome(
                Status.REJECTED,
                error=exc.message,
                http_status=exc.http_status,
                attempts=state.sent,
            )
        except TransientApiError as exc:
            return Outcome(
                Status.FAILED,
                error=exc.message,
                http_status=exc.http_status,
                attempts=state.sent,
                unsure=state.unsure,
            )
        except Interrupted:
            status = Status.SENDING if state.unsure else Status.PENDING
            return Outcome(status, error="interrupted", attempts=state.sent, unsure=state.unsure)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _exhausted(self, state: _Attempts) -> bool:
        return state.failures >= self._config.attempts or state.throttled >= MAX_THROTTLED

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        self.tally.retries += 1
        if isinstance(exc, RateLimitedError):
            return 0.0  # the limiter already pauses every worker until Retry-After
        return float(self._backoff(retry_state))

    async def _attempt(self, record: Record, state: _Attempts) -> Outcome:
        if state.unsure:
            found = await self._find(record, state)
            if found is not None:
                return _with_attempts(found, state.sent)
            state.unsure = False
        state.sent += 1
        try:
            answer = await self._request(state, lambda: self._sender.create(record.payload()))
            outcome = interpret(answer)
        except RejectedError:
            if state.sent > 1 or state.unsure:
                # Possibly our own earlier attempt, answered "taken": the lookup decides.
                found = await self._find(record, state)
                if found is not None:
                    return _with_attempts(found, state.sent)
            raise
        return _with_attempts(outcome, state.sent)

    async def _find(self, record: Record, state: _Attempts) -> Outcome | None:
        self.tally.lookups += 1
        answer = await self._request(state, lambda: self._sender.find(record.code))
        if answer.status == 404:
            return None
        if answer.status != 200:
            try:
                interpret(answer)
            except RejectedError as exc:
                # A lookup refused with a 4xx settles nothing: try again later.
                raise ServerError(
                    f"lookup failed: {exc.message}", http_status=exc.http_status
                ) from None
        items = answer.body.get("response") if isinstance(answer.body, dict) else None
        return settle(record, items if isinstance(items, list) else [])

    async def _request(self, state: _Attempts, request: Callable[[], Awaitable[Answer]]) -> Answer:
        """Make one request in its rate-limit slot, keeping the counters and the 429 pause."""
        await self._slot()
        self.tally.requests += 1
        try:
            answer = await request()
            if answer.status == 429:
                interpret(answer)
        except RateLimitedError as exc:
            state.throttled += 1
            self.tally.throttled += 1
            self._limiter.throttled(exc.retry_after)
            raise
        except TransientApiError as exc:
            state.failures += 1
            state.unsure = state.unsure or exc.maybe_sent
            self._failed()
            raise
        if answer.status < 500:
            self._consecutive_failures = 0
        else:
            state.failures += 1
            state.unsure = True
            self._failed()
        return answer

    async def _slot(self) -> None:
        if self.stopping.is_set():
            raise Interrupted("stopping")
        await self._limiter.acquire()
        if self.stopping.is_set():
            raise Interrupted("stopping")

    def _failed(self) -> None:
        self._consecutive_failures += 1
        if self._consecutive_failures >= self._config.max_consecutive_failures:
            raise ApiUnavailableError(
                f"stopped after {self._consecutive_failures} consecutive failed requests; "
                "the API looks unavailable"
            )


def _with_attempts(outcome: Outcome, attempts: int) -> Outcome:
    return Outcome(
        outcome.status,
        api_id=outcome.api_id,
        nice_code=outcome.nice_code,
        error=outcome.error,
        http_status=outcome.http_status,
        attempts=attempts,
    )


@dataclass(frozen=True, slots=True)
class Work:
    """A record to send and whether an earlier run may already have created it."""

    record: Record
    unsure: bool = False


async def run_pool(
    work: Sequence[Work],
    submitter: Submitter,
    *,
    concurrency: int,
    batch_size: int,
    before_batch: Callable[[Sequence[Work]], None],
    on_outcome: Callable[[Work, Outcome], None],
    drain_timeout: float,
    idle: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Send *work* with `concurrency` workers, announcing each batch before any of it goes out.

    `before_batch` marks a batch ``sending`` in the journal; `on_outcome` records each outcome.
    Setting ``submitter.stopping`` stops taking work: in-flight requests get `drain_timeout`
    seconds to finish, then are cancelled (their rows stay ``sending`` and are looked up next
    run). A :class:`~importer.errors.StopRun` from any worker stops all and is re-raised.
    Work that was announced but never started is reported back as ``pending``.
    """
    queue: asyncio.Queue[Work | None] = asyncio.Queue(maxsize=concurrency * 2)
    stopping = submitter.stopping
    failure: list[StopRun] = []
    announced: list[Work] = []
    started: set[int] = set()

    async def feed() -> None:
        for start in range(0, len(work), batch_size):
            if stopping.is_set():
                break
            batch = work[start : start + batch_size]
            before_batch(batch)
            announced.extend(batch)
            for item in batch:
                if stopping.is_set():
                    break
                await queue.put(item)
        for _ in range(concurrency):
            await queue.put(None)

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            if stopping.is_set():
                continue
            started.add(id(item))
            try:
                outcome = await submitter.send(item.record, unsure=item.unsure)
            except StopRun as exc:
                failure.append(exc)
                stopping.set()
                # Its last request may have gone through: settle it by a lookup next run.
                outcome = Outcome(Status.SENDING, error=str(exc), unsure=True)
            on_outcome(item, outcome)

    feeder = asyncio.create_task(feed())
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    pending_tasks = {feeder, *workers}
    try:
        while pending_tasks:
            done, pending_tasks = await asyncio.wait(pending_tasks, timeout=0.25)
            for task in done:
                task.result()
            if idle is not None:
                await idle()
            if stopping.is_set():
                break
        if pending_tasks:
            feeder.cancel()
            while not queue.empty():
                queue.get_nowait()
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.wait(workers, timeout=drain_timeout)
    finally:
        for task in (feeder, *workers):
            task.cancel()
        await asyncio.gather(feeder, *workers, return_exceptions=True)
    for item in announced:
        if id(item) not in started:
            on_outcome(item, Outcome(Status.PENDING, unsure=item.unsure))
    if failure:
        raise failure[0]
