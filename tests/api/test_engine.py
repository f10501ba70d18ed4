"""The request engine and the create protocol, with a scripted sender and a fake clock."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from importer.api.engine import Runner, backoff_ceiling
from importer.api.limiter import PacedLimiter
from importer.api.ops import CREATE, settle
from importer.api.wire import MAX_RETRY_AFTER, Answer, Request, parse_retry_after
from importer.errors import (
    ApiUnavailableError,
    AuthError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransportError,
)
from importer.models import Outcome, Record, Status
from tests.fakes import (
    ABSENT,
    CONFIG,
    ID,
    OTHER,
    VIDEO,
    FakeClock,
    created,
    drive,
    item,
    listing,
    message,
    record,
    submitter,
)

TIMEOUT = TransportError("timed out", maybe_sent=True)
REFUSED = TransportError("cannot connect", maybe_sent=False)
OURS = listing(item(api_id="b2" * 12))
THEIRS = listing(item(api_id="c3" * 12, video_id=OTHER))
TAKEN = message(422, "Code has already been taken")


class ScriptedSender:
    """Answers each request with the next step of a script of ``(method, answer or error)``."""

    def __init__(self, script: Sequence[tuple[str, Answer | Exception]]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, Any]] = []

    async def send(self, request: Request) -> Answer:
        body = orjson.loads(request.body) if request.body else None
        arg = dict(request.params).get("code") if request.method == "GET" else body
        return await self._next(request.method, arg)

    async def _next(self, method: str, arg: Any) -> Answer:
        self.calls.append((method, arg))
        assert self.script, f"unexpected {method}: the script is used up"
        expected, step = self.script.pop(0)
        assert method == expected, f"expected a {expected}, got a {method}"
        await asyncio.sleep(0)
        if isinstance(step, Exception):
            raise step
        return step

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)


class AlwaysSender:
    """Answers every request the same way."""

    def __init__(self, post: Answer | Exception, get: Answer | Exception = ABSENT) -> None:
        self.post, self.get = post, get
        self.posts = self.gets = 0

    async def send(self, request: Request) -> Answer:
        if request.method == "POST":
            self.posts += 1
            return await self._answer(self.post)
        self.gets += 1
        return await self._answer(self.get)

    @staticmethod
    async def _answer(step: Answer | Exception) -> Answer:
        await asyncio.sleep(0)
        if isinstance(step, Exception):
            raise step
        return step


# --- pure decisions ------------------------------------------------------------------------------

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("0", 0.0),
        ("1", 1.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("Tue, 01 Jan 2030 12:00:30 GMT", 30.0),
        ("Tue, 01 Jan 2030 12:00:30 -0000", 30.0),
        ("Tue, 01 Jan 2030 11:59:00 GMT", 0.0),  # in the past: go now
        ("Tuesday, 01-Jan-30 12:00:05 GMT", 5.0),  # RFC 850, still allowed by RFC 9110
        ("-5", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
        ("99999999", MAX_RETRY_AFTER),
        ("Sat, 01 Jan 2050 00:00:00 GMT", MAX_RETRY_AFTER),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == (
        None if seconds is None else pytest.approx(seconds)
    )


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (999, 4.0)],
)
def test_backoff_ceiling_doubles_and_is_capped(failures: int, ceiling: float) -> None:
    assert backoff_ceiling(failures, 0.5, 4.0) == ceiling


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (created(), Outcome(Status.CREATED, api_id=ID, nice_code="PROM-O1", http_status=201)),
        (
            created(content_title=" The Movie "),  # kept for the printed cards
            Outcome(Status.CREATED, ID, "PROM-O1", http_status=201, content_title="The Movie"),
        ),
        (
            created(content_title=None),
            Outcome(Status.CREATED, api_id=ID, nice_code="PROM-O1", http_status=201),
        ),
        (Answer(200, {"response": {"_id": ID}}), ServerError),  # not 201: looked up
        (Answer(201, {"response": {}}), ServerError),
        (Answer(201, "not json"), ServerError),
        (Answer(204, None), ServerError),
        (TAKEN, RejectedError),
        (message(404, "Video not found"), RejectedError),
        (message(400, "bad"), RejectedError),
        (Answer(400, None), ApiUnavailableError),  # not the API's format: not a verdict
        (Answer(404, "<html>Not Found</html>"), ApiUnavailableError),
        (Answer(201, {"response": {"_id": "not-an-id"}}), ServerError),
        (message(401, "Invalid or missing API key"), AuthError),
        (message(403, "Forbidden"), AuthError),
        (message(429, "slow down", "2"), RateLimitedError),
        (message(500, "boom"), ServerError),
        (Answer(502, "<html>Bad gateway</html>"), ServerError),
        (message(503, "Service Unavailable"), ServerError),
        (Answer(301, None), ApiUnavailableError),
        (Answer(302, None), ApiUnavailableError),
        (Answer(307, None), ApiUnavailableError),
    ],
)
def test_interpret(answer: Answer, expected: Outcome | type[Exception]) -> None:
    if isinstance(expected, Outcome):
        assert drive(CREATE, record(), [answer]) == dataclasses.replace(expected, attempts=1)
    else:
        with pytest.raises(expected):
            drive(CREATE, record(), [answer])


def test_interpret_keeps_the_apis_message_and_retry_after() -> None:
    with pytest.raises(RejectedError) as rejected:
        drive(CREATE, record(), [TAKEN])
    assert (rejected.value.message, rejected.value.http_status) == (TAKEN.body["message"], 422)
    with pytest.raises(RateLimitedError) as limited:
        drive(CREATE, record(), [message(429, "slow down", "7")])
    assert limited.value.retry_after == 7.0
    with pytest.raises(ServerError) as server:
        drive(CREATE, record(), [Answer(502, "<html>Bad gateway</html>")])
    assert server.value.maybe_sent
    assert server.value.message == "<html>Bad gateway</html>"


@pytest.mark.parametrize(
    ("rec", "found", "status", "api_id"),
    [
        (record(), [], None, None),
        (record(), [item()], Status.CREATED, ID),
        (record("promo1"), [item("PROMO1")], Status.CREATED, ID),  # codes are case-insensitive
        (record(entitlement=VIDEO.upper()), [item()], Status.CREATED, ID),
        (record(), [item(video_id=OTHER)], Status.REJECTED, ""),
        (record(), [item(expires="2031-01-15")], Status.REJECTED, ""),  # another owner's date
        (record(), [item(expires="2030-01-15")], Status.CREATED, ID),  # a bare date
        (record(), [item(expires=None)], Status.REJECTED, ""),
        (record(), [item(video_id=None)], Status.REJECTED, ""),
        (record(kind="playlist"), [item()], Status.REJECTED, ""),
        (record(), [item("PROMO10")], None, None),  # a filter that matched loosely
        (record(), ["junk", item("OTHER"), item()], Status.CREATED, ID),
    ],
)
def test_settle(rec: Record, found: list[Any], status: Status | None, api_id: str | None) -> None:
    outcome = settle(rec, found)
    if status is None:
        assert outcome is None
    else:
        assert outcome is not None
        assert (outcome.status, outcome.api_id) == (status, api_id)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (ABSENT, None),
        (OURS, Status.CREATED),
        (THEIRS, Status.REJECTED),
        (Answer(200, {"oops": 1}), ServerError),  # never taken for "absent"
        (message(404, "Not found"), ServerError),
        (Answer(404, "<html>no</html>"), ApiUnavailableError),
        (message(422, "bad filter"), ServerError),
        (message(503, "down"), ServerError),
        (message(401, "no"), AuthError),
        (message(429, "slow", "1"), RateLimitedError),
        (Answer(302, None), ApiUnavailableError),
    ],
)
def test_interpret_lookup(answer: Answer, expected: Status | type[Exception] | None) -> None:
    if expected is None or isinstance(expected, Status):
        outcome = drive(CREATE.lookup, record(), [answer])
        assert (outcome.status if outcome else None) == expected
    else:
        with pytest.raises(expected):
            drive(CREATE.lookup, record(), [answer])


# --- one record, scripted ------------------------------------------------------------------------

SCENARIOS: dict[str, tuple[bool, list[tuple[str, Answer | Exception]], Status, int, str]] = {
    # name: (unsure at start, script, status, attempts, api_id or error)
    "201": (False, [("POST", created())], Status.CREATED, 1, ID),
    "422 first try: rejected, no lookup": (
        False,
        [("POST", TAKEN)],
        Status.REJECTED,
        1,
        "Code has already been taken",
    ),
    "404 entitlement: rejected": (
        False,
        [("POST", message(404, "Video not found"))],
        Status.REJECTED,
        1,
        "Video not found",
    ),
    "500 then lookup absent then 201": (
        False,
        [("POST", message(500, "boom")), ("GET", ABSENT), ("POST", created())],
        Status.CREATED,
        2,
        ID,
    ),
    "timeout, lookup finds ours: no second POST": (
        False,
        [("POST", TIMEOUT), ("GET", OURS)],
        Status.CREATED,
        1,
        "b2" * 12,
    ),
    "timeout, lookup finds another entitlement": (
        False,
        [("POST", TIMEOUT), ("GET", THEIRS)],
        Status.REJECTED,
        1,
        "already exists on the API with other values",
    ),
    "timeout, lookup absent, POST again": (
        False,
        [("POST", TIMEOUT), ("GET", ABSENT), ("POST", created())],
        Status.CREATED,
        2,
        ID,
    ),
    "refused before sending: POST again, no lookup": (
        False,
        [("POST", REFUSED), ("POST", created())],
        Status.CREATED,
        2,
        ID,
    ),
    "429 then 201: the 429 is no attempt": (
        False,
        [("POST", message(429, "slow down", "2")), ("POST", created())],
        Status.CREATED,
        1,
        ID,
    ),
    "retry answered taken, lookup finds ours": (
        False,
        [("POST", TIMEOUT), ("GET", ABSENT), ("POST", TAKEN), ("GET", OURS)],
        Status.CREATED,
        2,
        "b2" * 12,
    ),
    "retry answered taken, lookup absent: rejected": (
        False,
        [("POST", REFUSED), ("POST", TAKEN), ("GET", ABSENT)],
        Status.REJECTED,
        2,
        "Code has already been taken",
    ),
    "201 without a code: looked up": (
        False,
        [("POST", Answer(201, {})), ("GET", OURS)],
        Status.CREATED,
        1,
        "b2" * 12,
    ),
    "lookup fails, is tried again": (
        False,
        [("POST", TIMEOUT), ("GET", message(503, "down")), ("GET", TIMEOUT), ("GET", OURS)],
        Status.CREATED,
        1,
        "b2" * 12,
    ),
    "lookup answered 404 is not absent": (
        False,
        [("POST", TIMEOUT), ("GET", message(404, "Not found")), ("GET", OURS)],
        Status.CREATED,
        1,
        "b2" * 12,
    ),
    "lookup 429 is retried for free": (
        False,
        [("POST", TIMEOUT), ("GET", message(429, "slow", "1")), ("GET", OURS)],
        Status.CREATED,
        1,
        "b2" * 12,
    ),
    "attempts exhausted: failed with the last error": (
        False,
        [
            ("POST", message(503, "Service Unavailable")),
            ("GET", ABSENT),
            ("POST", TIMEOUT),
            ("GET", ABSENT),
            ("POST", REFUSED),
            ("POST", message(502, "Bad Gateway")),
        ],
        Status.FAILED,
        4,
        "Bad Gateway",
    ),
    "unsure from an earlier run, found": (True, [("GET", OURS)], Status.CREATED, 0, "b2" * 12),
    "unsure from an earlier run, absent": (
        True,
        [("GET", ABSENT), ("POST", created())],
        Status.CREATED,
        1,
        ID,
    ),
    "unsure from an earlier run, absent, then taken: looked up again": (
        True,
        [("GET", ABSENT), ("POST", TAKEN), ("GET", OURS)],
        Status.CREATED,
        1,
        "b2" * 12,
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
async def test_one_record(name: str) -> None:
    unsure, script, status, attempts, detail = SCENARIOS[name]
    sender = ScriptedSender(script)
    posts = sum(1 for method, _ in script if method == "POST")
    gets = len(script) - posts
    sub = submitter(sender)

    outcome = await sub.perform(CREATE, record(), unsure=unsure)

    assert not sender.script, "the script was not used up"
    assert outcome.status == status
    assert outcome.attempts == attempts
    assert (sender.count("POST"), sender.count("GET")) == (posts, gets)
    if status == Status.CREATED:
        assert outcome.api_id == detail
    else:
        assert detail in outcome.error
    assert sub.tally.requests == len(script)
    assert sub.tally.lookups == gets


async def test_a_post_sends_the_records_payload_and_a_lookup_its_code() -> None:
    sender = ScriptedSender([("POST", TIMEOUT), ("GET", OURS)])
    await submitter(sender).perform(CREATE, record("Promo1"))
    assert sender.calls == [("POST", record("Promo1").payload()), ("GET", "Promo1")]


async def test_failed_after_a_possibly_applied_request_stays_unsure() -> None:
    sender = AlwaysSender(TIMEOUT, get=message(503, "down"))
    outcome = await submitter(sender).perform(CREATE, record())
    assert (outcome.status, outcome.unsure, outcome.attempts) == (Status.FAILED, True, 1)
    assert sender.posts == 1  # never a second POST while the first is unsettled


async def test_failed_when_nothing_can_have_been_applied_is_not_unsure() -> None:
    outcome = await submitter(AlwaysSender(REFUSED)).perform(CREATE, record())
    assert (outcome.status, outcome.unsure, outcome.attempts) == (Status.FAILED, False, 4)
    assert "cannot connect" in outcome.error


async def test_a_429_pauses_the_limiter_for_retry_after() -> None:
    clock = FakeClock()
    sender = ScriptedSender([("POST", message(429, "slow down", "3")), ("POST", created())])
    sub = submitter(sender, clock)
    outcome = await sub.perform(CREATE, record())
    assert outcome.status == Status.CREATED
    assert clock.now >= 3.0  # the second POST waited out the pause
    assert clock.waits == []  # and no backoff on top of it
    assert (sub.tally.throttled, sub.tally.retries) == (1, 1)


async def test_endless_429s_end_failed_without_using_attempts() -> None:
    sender = AlwaysSender(message(429, "slow down", "0"))
    outcome = await submitter(sender).perform(CREATE, record())
    assert outcome.status == Status.FAILED
    assert outcome.attempts == 0
    assert outcome.http_status == 429
    assert sender.posts == 100


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ([("POST", message(401, "Invalid or missing API key"))], AuthError),
        ([("POST", message(403, "Forbidden"))], AuthError),
        ([("POST", TIMEOUT), ("GET", message(401, "no"))], AuthError),
        ([("POST", Answer(302, None))], ApiUnavailableError),
    ],
)
async def test_the_run_stops_at_once(
    script: list[tuple[str, Answer | Exception]], error: type[Exception]
) -> None:
    sender = ScriptedSender(script)
    with pytest.raises(error):
        await submitter(sender).perform(CREATE, record())
    assert not sender.script


async def test_consecutive_failures_stop_the_run() -> None:
    config = dataclasses.replace(CONFIG, attempts=3, max_consecutive_failures=5)
    sender = AlwaysSender(REFUSED)
    sub = submitter(sender, config=config)
    assert (await sub.perform(CREATE, record("A"))).status == Status.FAILED  # failures 1-3
    with pytest.raises(ApiUnavailableError, match="5 consecutive failed requests"):
        await sub.perform(CREATE, record("B"))  # failures 4, 5
    assert sender.posts == 5


async def test_an_answer_resets_the_consecutive_failures() -> None:
    config = dataclasses.replace(CONFIG, attempts=3, max_consecutive_failures=4)
    script: list[tuple[str, Answer | Exception]] = []
    for code in "ABCD":
        script += [("POST", REFUSED), ("POST", REFUSED), ("POST", created(code))]
    sub = submitter(ScriptedSender(script), config=config)
    for code in "ABCD":
        assert (await sub.perform(CREATE, record(code))).status == Status.CREATED


async def test_429s_neither_count_nor_reset_the_consecutive_failures() -> None:
    config = dataclasses.replace(CONFIG, attempts=10, max_consecutive_failures=3)
    slow = message(429, "slow", "0")
    script: list[tuple[str, Answer | Exception]] = [
        ("POST", REFUSED),
        ("POST", slow),
        ("POST", REFUSED),
        ("POST", slow),
        ("POST", REFUSED),
    ]
    with pytest.raises(ApiUnavailableError):
        await submitter(ScriptedSender(script), config=config).perform(CREATE, record())


# --- backoff -------------------------------------------------------------------------------------


class Highest(random.Random):
    """Jitter that always draws the ceiling, to see the ceilings themselves."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def test_backoff_ceilings_double_and_are_capped() -> None:
    clock = FakeClock()
    config = dataclasses.replace(CONFIG, attempts=8, backoff_initial=0.5, backoff_max=4.0)
    sub = submitter(AlwaysSender(REFUSED), clock, config, rng=Highest())
    await sub.perform(CREATE, record())
    assert clock.waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert sub.tally.retries == 7


async def test_backoff_waits_are_full_jitter_within_the_ceilings() -> None:
    clock = FakeClock()
    config = dataclasses.replace(CONFIG, attempts=10, backoff_initial=0.5, backoff_max=4.0)
    waits: list[float] = []
    for seed in range(30):
        clock.waits = []
        sub = submitter(AlwaysSender(REFUSED), clock, config, rng=random.Random(seed))
        await sub.perform(CREATE, record())
        assert len(clock.waits) == 9
        for n, wait in enumerate(clock.waits, start=1):
            assert 0.0 <= wait <= backoff_ceiling(n, 0.5, 4.0)
        waits += clock.waits[3:]
    assert max(waits) > 3.0  # the cap is reached ...
    assert min(waits) < 1.0  # ... and the jitter is full, down to about zero
    assert len(set(waits)) == len(waits)


async def test_a_429_adds_no_backoff_and_does_not_raise_the_exponent() -> None:
    clock = FakeClock()
    script: list[tuple[str, Answer | Exception]] = [
        ("POST", REFUSED),
        ("POST", message(429, "slow", "0")),
        ("POST", REFUSED),
        ("POST", created()),
    ]
    await submitter(ScriptedSender(script), clock, rng=Highest()).perform(CREATE, record())
    assert clock.waits == [0.5, 1.0]


async def test_a_5xx_with_retry_after_waits_at_least_that_long() -> None:
    clock = FakeClock()
    script: list[tuple[str, Answer | Exception]] = [
        ("POST", message(503, "maintenance", "20")),
        ("GET", ABSENT),
        ("POST", created()),
    ]
    outcome = await submitter(ScriptedSender(script), clock).perform(CREATE, record())
    assert outcome.status == Status.CREATED
    assert clock.waits == [20.0]  # above backoff_max: the server knows best


# --- stopping ------------------------------------------------------------------------------------


async def test_nothing_is_sent_once_stopping() -> None:
    sender = AlwaysSender(created())
    sub = submitter(sender)
    sub.stopping.set()
    outcome = await sub.perform(CREATE, record())
    assert (outcome.status, outcome.attempts, sender.posts) == (Status.PENDING, 0, 0)
    outcome = await sub.perform(CREATE, record(), unsure=True)
    assert (outcome.status, outcome.unsure) == (Status.SENDING, True)


async def test_a_stop_cuts_a_backoff_wait_short() -> None:
    forever = asyncio.Event()

    async def never_ending_sleep(seconds: float) -> None:
        await forever.wait()

    sender = AlwaysSender(message(503, "down"))
    clock = FakeClock()
    limiter = PacedLimiter(1000, clock=clock.clock, sleep=clock.limiter_sleep)
    sub = Runner(sender, limiter, CONFIG, sleep=never_ending_sleep)
    task = asyncio.create_task(sub.perform(CREATE, record()))
    for _ in range(20):
        await asyncio.sleep(0)
    assert sender.posts == 1
    sub.stopping.set()
    outcome = await asyncio.wait_for(task, 1.0)
    # The 503 may have been applied: the row must be looked up next run.
    assert (outcome.status, outcome.unsure, outcome.attempts) == (Status.SENDING, True, 1)


async def test_a_stop_cuts_a_429_pause_short() -> None:
    sender = AlwaysSender(message(429, "slow down", "300"))
    limiter = PacedLimiter(1000)  # the real clock and sleep: the stop must not wait 300 s
    sub = Runner(sender, limiter, CONFIG)
    task = asyncio.create_task(sub.perform(CREATE, record()))
    for _ in range(20):
        await asyncio.sleep(0)
    sub.stopping.set()
    outcome = await asyncio.wait_for(task, 1.0)
    assert (outcome.status, outcome.unsure, sender.posts) == (Status.PENDING, False, 1)


def test_a_code_adopted_by_a_lookup_keeps_its_title() -> None:
    outcome = settle(record(), [item(content_title="The Movie")])
    assert outcome is not None
    assert (outcome.status, outcome.content_title) == (Status.CREATED, "The Movie")
