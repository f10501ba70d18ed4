"""The sending stage end to end over real loopback HTTP: sender, limiter, submitter, pool.

The API is the project's sandbox with its fault knobs, or a small aiohttp test server where a
behaviour is needed that the sandbox lacks (a redirect, an answer slower than the timeout).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from importer.api.engine import Runner, Tally
from importer.api.http import HttpSender, open_session
from importer.api.limiter import PacedLimiter
from importer.api.ops import CREATE
from importer.api.pool import Work, run_pool
from importer.api.wire import Answer, Request
from importer.config import ApiConfig, SendConfig
from importer.errors import ApiUnavailableError, AuthError, TransportError
from importer.models import Outcome, Record, Status
from importer.sandbox import Faults, peak_in_window, running_sandbox

KEY = "CANARY-KEY-1234567890"
VIDEO = "5c8e0a3b1f2e4d6a7b8c9d0e"
FAST_RETRIES = SendConfig(
    rate=1000.0,
    concurrency=16,
    attempts=10,
    backoff_initial=0.005,
    backoff_max=0.05,
    max_consecutive_failures=50,
    drain_timeout=2.0,
)


def records(n: int, prefix: str = "LB") -> list[Record]:
    return [
        Record(i + 2, f"code:{prefix}{i:05d}", f"{prefix}{i:05d}", "2030-01-15", "video", VIDEO)
        for i in range(n)
    ]


class Recording:
    """A sender that keeps every TransportError the real one raised."""

    def __init__(self, inner: HttpSender) -> None:
        self.inner = inner
        self.errors: list[TransportError] = []

    async def send(self, request: Request) -> Answer:
        try:
            return await self.inner.send(request)
        except TransportError as exc:
            self.errors.append(exc)
            raise


@dataclass
class Run:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    errors: list[TransportError] = field(default_factory=list)
    duration: float = 0.0
    stopped: BaseException | None = None


async def import_codes(
    url: str,
    items: Sequence[Record],
    send: SendConfig = FAST_RETRIES,
    *,
    key: str = KEY,
    key_in: str = "query",
    total_timeout: float = 5.0,
    stop_after: float | None = None,
) -> Run:
    """Send *items* the way the pipeline does, minus the journal; StopRun is kept, not raised."""
    config = ApiConfig(url=url, key_in=key_in, total_timeout=total_timeout, connect_timeout=2.0)
    run = Run()
    async with open_session(config, send.concurrency) as session:
        sender = Recording(HttpSender(session, config, key))
        run.errors = sender.errors
        submitter = Runner(sender, PacedLimiter(send.rate), send, tally=run.tally)

        def on_outcome(work: Work[Record], outcome: Outcome) -> None:
            assert work.record.code not in run.outcomes, "an outcome reported twice"
            run.outcomes[work.record.code] = outcome

        async def stop_later(delay: float) -> None:
            await asyncio.sleep(delay)
            submitter.stopping.set()

        stopper = asyncio.create_task(stop_later(stop_after)) if stop_after is not None else None
        started = time.monotonic()
        try:
            await run_pool(
                [Work(r, r) for r in items],
                lambda w: submitter.perform(CREATE, w.item, unsure=w.unsure),
                submitter.stopping,
                concurrency=send.concurrency,
                batch_size=100,
                before_batch=lambda batch: None,
                on_outcome=on_outcome,
                drain_timeout=send.drain_timeout,
            )
        except (AuthError, ApiUnavailableError) as exc:
            run.stopped = exc
        finally:
            run.duration = time.monotonic() - started
            if stopper is not None:
                stopper.cancel()
    return run


def full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


# --- the promises --------------------------------------------------------------------------------


async def test_every_code_is_created_exactly_once_through_faults() -> None:
    faults = Faults(error_rate=0.05, reset_rate=0.05, lost_rate=0.05, seed=20300115)
    items = records(300)
    async with running_sandbox(KEY, faults) as sandbox:
        run = await import_codes(sandbox.url, items)
        state = sandbox.state

    assert run.stopped is None
    assert len(state.created_log) == 300
    assert len(set(state.created_log)) == 300
    assert {code: o.status for code, o in run.outcomes.items()} == {
        r.code: Status.CREATED for r in items
    }
    for code, outcome in run.outcomes.items():
        assert outcome.api_id == state.codes[code]["_id"]
    # The faults really happened, and lost answers were settled by lookups, not by a second POST.
    assert state.faults_injected >= 30
    assert run.tally.lookups > 0
    assert state.posts < 300 + state.faults_injected


async def test_the_server_never_sees_more_than_the_rate() -> None:
    send = SendConfig(rate=50.0, concurrency=8, attempts=6)
    items = records(150, "RT")
    async with running_sandbox(KEY, Faults(rate_limit=50)) as sandbox:
        run = await import_codes(sandbox.url, items, send)
        state = sandbox.state

    assert all(o.status == Status.CREATED for o in run.outcomes.values())
    assert len(run.outcomes) == 150
    assert state.rejected_429 == 0
    assert run.tally.throttled == 0
    peak = peak_in_window(state.arrivals)
    assert peak <= 50
    assert max(state.per_second.values()) <= 50
    achieved = 150 / run.duration
    assert achieved >= 45
    print(f"\nrate 50: peak {peak} in any second at the server, {achieved:.1f} codes/s")


async def test_a_refused_key_stops_everything_at_once() -> None:
    send = SendConfig(rate=1000.0, concurrency=4)
    async with running_sandbox("the-right-key") as sandbox:
        run = await import_codes(sandbox.url, records(40), send, key="a-wrong-key")
        state = sandbox.state
    assert isinstance(run.stopped, AuthError)
    assert state.posts <= send.concurrency
    assert state.requests == state.posts
    assert not state.codes


async def test_the_key_can_go_in_a_header() -> None:
    async with running_sandbox(KEY) as sandbox:
        run = await import_codes(sandbox.url, records(20), key_in="header")
        assert len(sandbox.state.codes) == 20
    assert all(o.status == Status.CREATED for o in run.outcomes.values())


# --- the key never leaks -------------------------------------------------------------------------


@pytest.mark.parametrize("key_in", ["query", "header"])
async def test_the_key_is_in_no_error_text(key_in: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    send = SendConfig(rate=1000.0, concurrency=2, attempts=2, backoff_initial=0.001)
    async with running_sandbox(KEY, Faults(reset_rate=1.0, seed=1)) as sandbox:
        reset = await import_codes(sandbox.url, records(3), send, key_in=key_in)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = await import_codes(f"http://127.0.0.1:{port}", records(3), send, key_in=key_in)

    for run in (reset, refused):
        assert {o.status for o in run.outcomes.values()} == {Status.FAILED}
        assert run.errors
        for exc in run.errors:
            assert KEY not in full_text(exc)
        for outcome in run.outcomes.values():
            assert KEY not in outcome.error
    assert all(e.maybe_sent for e in reset.errors)
    assert not any(e.maybe_sent for e in refused.errors)
    client_logs = [r for r in caplog.records if not r.name.startswith("aiohttp.server")]
    assert all(KEY not in r.getMessage() for r in client_logs)


# --- behaviours the sandbox lacks: a small test server -------------------------------------------


@dataclass
class Slow:
    """An API whose first POST answers only after the client gave up, yet creates the code."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    codes: dict[str, str] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    posts: int = 0
    gets: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            self.posts += 1
            fields = json.loads(await request.read())["redemption_code"]
            self.codes[fields["code"]] = "d4" * 12
            self.dates[fields["code"]] = fields["expiration_date"]
            if self.posts == 1:
                await self.release.wait()
            return web.json_response({"response": {"_id": self.codes[fields["code"]]}}, status=201)
        self.gets += 1
        code = request.query["code"]
        found = (
            [
                {
                    "_id": self.codes[code],
                    "code": code,
                    "video_id": VIDEO,
                    "expiration_date": self.dates[code],
                }
            ]
            if code in self.codes
            else []
        )
        return web.json_response({"response": found})


@pytest.fixture
async def slow_api() -> AsyncIterator[tuple[str, Slow]]:
    slow = Slow()
    app = web.Application()
    app.router.add_route("*", "/redemption_codes", slow.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), slow
    finally:
        slow.release.set()
        await server.close()


async def test_a_timed_out_post_is_looked_up_not_sent_twice(slow_api: tuple[str, Slow]) -> None:
    url, slow = slow_api
    send = SendConfig(rate=1000.0, concurrency=1, backoff_initial=0.001)
    run = await import_codes(url, records(1), send, total_timeout=0.2)

    [outcome] = run.outcomes.values()
    assert (outcome.status, outcome.api_id, outcome.attempts) == (Status.CREATED, "d4" * 12, 1)
    assert (slow.posts, slow.gets) == (1, 1)
    [error] = run.errors
    assert error.maybe_sent is True
    assert error.message.startswith("timed out")
    assert KEY not in full_text(error)


async def test_a_redirect_stops_the_run_and_is_not_followed() -> None:
    seen: list[str] = []

    async def redirect(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path}")
        raise web.HTTPFound("/somewhere-else")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    server = TestServer(app)
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        run = await import_codes(url, records(5), SendConfig(rate=1000.0, concurrency=1))
    finally:
        await server.close()
    assert isinstance(run.stopped, ApiUnavailableError)
    assert seen == ["POST /redemption_codes"]


async def test_a_stop_finishes_requests_in_flight_and_loses_none() -> None:
    send = SendConfig(rate=1000.0, concurrency=4, drain_timeout=2.0)
    items = records(40)
    async with running_sandbox(KEY, Faults(latency=0.2)) as sandbox:
        run = await import_codes(sandbox.url, items, send, stop_after=0.05)
        on_server = set(sandbox.state.codes)

    assert len(run.outcomes) == 40
    created = {c for c, o in run.outcomes.items() if o.status == Status.CREATED}
    assert created == on_server
    assert len(created) == 4
    assert {o.status for c, o in run.outcomes.items() if c not in created} == {Status.PENDING}
    assert run.duration < 1.0
