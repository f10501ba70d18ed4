"""Answers, records, a fake clock, a ready Runner and a driver for operations, shared by the
sending tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Sequence
from typing import Any

from importer.api.engine import Attempt, Runner
from importer.api.limiter import PacedLimiter
from importer.api.wire import Answer, Request
from importer.config import SendConfig
from importer.models import Record

VIDEO = "5c8e0a3b1f2e4d6a7b8c9d0e"
OTHER = "6d9f1b4c2a3e5f7b8c9d0e1f"
ID = "a1" * 12


def record(code: str = "PROMO1", kind: str = "video", entitlement: str = VIDEO) -> Record:
    return Record(2, f"code:{code}", code, "2030-01-15", kind, entitlement)


def created(code: str = "PROMO1", api_id: str = ID, **fields: Any) -> Answer:
    return Answer(
        201, {"response": {"_id": api_id, "code": code, "nice_code": "PROM-O1", **fields}}
    )


def listing(*items: dict[str, Any]) -> Answer:
    return Answer(200, {"response": list(items), "pagination": {"next": None}})


def item(
    code: str = "PROMO1",
    api_id: str = ID,
    video_id: str | None = VIDEO,
    expires: str | None = "2030-01-15T00:00:00.000-05:00",
    **fields: Any,
) -> dict[str, Any]:
    return {
        "_id": api_id,
        "code": code,
        "video_id": video_id,
        "playlist_id": None,
        "expiration_date": expires,
        **fields,
    }


def message(status: int, text: str, retry_after: str | None = None) -> Answer:
    return Answer(status, {"message": text}, retry_after)


#: A lookup that finds nothing.
ABSENT = Answer(200, {"response": [], "pagination": {"next": None}})


class FakeClock:
    """One clock for the limiter and the backoff; `sleep` records what it was asked to wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    async def limiter_sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


CONFIG = SendConfig(
    rate=1000.0, attempts=4, backoff_initial=0.5, backoff_max=4.0, max_consecutive_failures=50
)


def submitter(
    sender: Any,
    clock: FakeClock | None = None,
    config: SendConfig = CONFIG,
    **kwargs: Any,
) -> Runner:
    """A Runner on a fake clock (named for the create path it mostly drives in tests)."""
    clock = clock or FakeClock()
    limiter = PacedLimiter(config.rate, clock=clock.clock, sleep=clock.limiter_sleep)
    return Runner(sender, limiter, config, sleep=clock.sleep, **kwargs)


def drive(
    steps: Callable[[Any, Attempt], Generator[Request, Answer, Any]] | Any,
    item: Any,
    answers: Sequence[Answer],
    state: Attempt | None = None,
) -> Any:
    """Run one try of an operation (or a bound step function) on canned answers, no I/O.

    Returns what it returns; raises what it raises; fails if an answer is left over.
    """
    step = steps.steps if hasattr(steps, "steps") else steps
    state = state or Attempt()
    gen = step(item, state)
    left = list(answers)
    try:
        request = next(gen)
        while True:
            if request.writes:
                state.writes += 1
            assert left, f"no answer left for {request.describe()}"
            request = gen.send(left.pop(0))
    except StopIteration as done:
        assert not left, "answers left over"
        return done.value
