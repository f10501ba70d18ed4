"""The worker pool: every record once, batches announced first, at most `concurrency` in flight,
stops that drain and report what never started."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from importer.api.engine import Runner
from importer.api.limiter import PacedLimiter
from importer.api.ops import CREATE
from importer.api.pool import Work, run_pool
from importer.api.wire import Answer, Request
from importer.errors import AuthError
from importer.models import Outcome, Status
from tests.fakes import ABSENT, CONFIG, created, message, record, submitter


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.outcomes: dict[str, Outcome] = {}
        self.order: list[str] = []

    def before_batch(self, batch: Sequence[Work[Any]]) -> None:
        self.batches.append([w.record.code for w in batch])

    def on_outcome(self, work: Work[Any], outcome: Outcome) -> None:
        assert work.record.code not in self.outcomes, "an outcome reported twice"
        self.outcomes[work.record.code] = outcome
        self.order.append(work.record.code)

    async def pool(
        self,
        work: Sequence[Work[Any]],
        sub: Runner,
        *,
        concurrency: int,
        batch_size: int = 10,
        drain_timeout: float = 1.0,
        stop_after: float | None = None,
    ) -> None:
        """Run the pool into this recorder; with `stop_after`, stop it that many seconds in."""

        async def stop_soon() -> None:
            if stop_after is not None:
                await asyncio.sleep(stop_after)
                sub.stopping.set()

        stopper = asyncio.create_task(stop_soon())
        try:
            await run_pool(
                work,
                lambda w: sub.perform(CREATE, w.item, unsure=w.unsure),
                sub.stopping,
                concurrency=concurrency,
                batch_size=batch_size,
                before_batch=self.before_batch,
                on_outcome=self.on_outcome,
                drain_timeout=drain_timeout,
            )
        finally:
            await stopper


def works(n: int) -> list[Work[Any]]:
    return [Work(r, r) for r in (record(f"C{i:03d}") for i in range(n))]


class CodeSender:
    """Creates every code, answering after `delay` real seconds; counts calls in flight."""

    def __init__(self, delay: float = 0.0, answer: Answer | None = None) -> None:
        self.delay = delay
        self.answer = answer
        self.posts = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent: list[str] = []

    async def send(self, request: Request) -> Answer:
        if request.method == "GET":
            return await self.find(dict(request.params)["code"])
        return await self.create(orjson.loads(request.body or b"{}"))

    async def create(self, payload: dict[str, Any]) -> Answer:
        self.posts += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        code = payload["redemption_code"]["code"]
        self.sent.append(code)
        return self.answer or created(code, api_id=f"{code:0>24}")

    async def find(self, code: str) -> Answer:
        return ABSENT


async def test_the_pool_sends_everything_once_announcing_batches_first() -> None:
    sender = CodeSender()
    rec = Recorder()
    sub = submitter(sender)
    await rec.pool(works(25), sub, concurrency=4, batch_size=10, drain_timeout=1.0)
    assert [len(b) for b in rec.batches] == [10, 10, 5]
    assert sorted(sender.sent) == [f"C{i:03d}" for i in range(25)]
    assert all(o.status == Status.CREATED for o in rec.outcomes.values())
    assert len(rec.outcomes) == 25


async def test_the_pool_keeps_at_most_concurrency_in_flight() -> None:
    sender = CodeSender(delay=0.002)
    rec = Recorder()
    sub = Runner(sender, PacedLimiter(100_000), CONFIG)
    await rec.pool(works(40), sub, concurrency=5, batch_size=500, drain_timeout=1.0)
    assert sender.most_in_flight == 5
    assert len(rec.outcomes) == 40


async def test_a_refused_key_stops_the_pool_and_reports_every_row() -> None:
    sender = CodeSender(answer=message(401, "Invalid or missing API key"))
    rec = Recorder()
    sub = submitter(sender)
    with pytest.raises(AuthError):
        await rec.pool(works(30), sub, concurrency=4, batch_size=10, drain_timeout=1.0)
    assert sender.posts <= 4
    assert len(rec.outcomes) == sum(len(b) for b in rec.batches)
    statuses = [o.status for o in rec.outcomes.values()]
    assert statuses.count(Status.SENDING) == sender.posts
    assert set(statuses) == {Status.SENDING, Status.PENDING}


async def test_a_stop_lets_requests_in_flight_finish_and_leaves_the_rest_pending() -> None:
    sender = CodeSender(delay=0.05)
    rec = Recorder()
    sub = Runner(sender, PacedLimiter(100_000), CONFIG)

    started = asyncio.get_running_loop().time()
    await rec.pool(works(20), sub, concurrency=3, batch_size=10, drain_timeout=5.0, stop_after=0.01)
    assert asyncio.get_running_loop().time() - started < 0.5
    statuses = [o.status for o in rec.outcomes.values()]
    assert statuses.count(Status.CREATED) == sender.posts == 3
    assert statuses.count(Status.PENDING) == 7  # the first batch; the second was never announced
    assert rec.batches == [[f"C{i:03d}" for i in range(10)]]


async def test_requests_past_the_drain_timeout_are_reported_sending() -> None:
    sender = CodeSender(delay=60)
    rec = Recorder()
    sub = Runner(sender, PacedLimiter(100_000), CONFIG)

    await rec.pool(works(5), sub, concurrency=2, batch_size=10, drain_timeout=0.05, stop_after=0.01)
    statuses = sorted(o.status for o in rec.outcomes.values())
    assert statuses == sorted([Status.SENDING] * 2 + [Status.PENDING] * 3)
    assert all(o.unsure for o in rec.outcomes.values() if o.status == Status.SENDING)


async def test_rows_never_started_stay_unsure_if_they_were() -> None:
    sender = CodeSender(delay=0.05)
    rec = Recorder()
    sub = Runner(sender, PacedLimiter(100_000), CONFIG)

    await rec.pool(
        [
            Work(record("A"), record("A")),
            Work(record("B"), record("B"), unsure=True),
            Work(record("C"), record("C")),
        ],
        sub,
        concurrency=1,
        batch_size=10,
        drain_timeout=1.0,
        stop_after=0.01,
    )
    assert rec.outcomes["A"].status == Status.CREATED
    assert rec.outcomes["B"] == Outcome(Status.PENDING, unsure=True)
    assert rec.outcomes["C"] == Outcome(Status.PENDING)
