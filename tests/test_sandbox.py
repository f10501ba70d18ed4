"""The sandbox, driven over real loopback HTTP with aiohttp's client: no mocks."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY

import aiohttp
import pytest

from importer.sandbox import (
    READ_ONLY_KEY,
    Faults,
    Sandbox,
    create_app,
    peak_in_window,
    running_sandbox,
    sandbox_state,
)

KEY = "test-key-0123456789"
VIDEO = "5c8e0a3b1f2e4d6a7b8c9d0e"
PLAYLIST = "6d9f1b4c2a3e5f7b8c9d0e1f"


def body(code: str = "PROMO2030", **overrides: Any) -> dict[str, Any]:
    """A valid create body for a video code, with fields replaced or (value None) removed."""
    fields: dict[str, Any] = {"code": code, "expiration_date": "2030-01-15", "video_id": VIDEO}
    fields.update(overrides)
    return {"redemption_code": {k: v for k, v in fields.items() if v is not None}}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield client


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox(KEY) as sb:
        yield sb


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    key: str | None = KEY,
    json: Any = None,
    **params: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request with the key as a query parameter; (status, decoded JSON or None, response)."""
    if key is not None:
        params["api_key"] = key
    async with session.request(method, url, params=params, json=json) as resp:
        text = await resp.text()
        return resp.status, (None if not text else await resp.json()), resp


async def post(
    session: aiohttp.ClientSession, sb: Sandbox, payload: Any, key: str | None = KEY
) -> tuple[int, Any]:
    status, data, _ = await call(
        session, "POST", f"{sb.url}/redemption_codes", key=key, json=payload
    )
    return status, data


# --- create --------------------------------------------------------------------------------------


async def test_create_answers_201_with_the_code_object(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    status, data = await post(session, sandbox, body("RQMJQJB5JX5V6JQ5"))
    assert status == 201
    obj = data["response"]
    assert len(obj["_id"]) == 24
    assert int(obj["_id"], 16) >= 0
    assert obj["code"] == "RQMJQJB5JX5V6JQ5"
    assert obj["nice_code"] == "RQMJ-QJB5-JX5V-6JQ5"
    assert obj["expiration_date"] == "2030-01-15T00:00:00.000-05:00"
    assert obj["video_id"] == VIDEO
    assert obj["playlist_id"] is obj["plan_id"] is obj["pass_plan_id"] is None
    assert obj["transaction_id"] is obj["redeemed_at"] is None
    assert (obj["available"], obj["redeemed"], obj["expired"]) == (True, False, False)
    assert obj["content_type"] == "Video"
    assert {"content_title", "site_id", "created_at", "updated_at"} <= obj.keys()
    assert sandbox.state.codes["RQMJQJB5JX5V6JQ5"] == obj
    assert sandbox.state.created_log == ["RQMJQJB5JX5V6JQ5"]


async def test_a_code_taken_in_another_case_is_422_and_not_stored_twice(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    assert (await post(session, sandbox, body("Promo1")))[0] == 201
    status, data = await post(session, sandbox, body("PROMO1", video_id=None, plan_id=PLAYLIST))
    assert (status, data) == (422, {"message": "Code has already been taken"})
    assert sandbox.state.created_log == ["Promo1"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "Request body is not valid JSON"),
        ([1, 2], "Redemption code is missing"),
        ({"code": "X"}, "Redemption code is missing"),
        (body(code=None), "Code can't be blank"),
        (body(code="  "), "Code can't be blank"),
        (body(expiration_date=None), "Expiration date can't be blank"),
        (body(expiration_date="15/01/2030"), "Expiration date is invalid"),
        (body(expiration_date="20300115"), "Expiration date is invalid"),
        (body(expiration_date="2030-02-30"), "Expiration date is invalid"),
        (body(video_id=None), "Video, playlist, plan or pass plan can't be blank"),
        (body(video_id=""), "Video, playlist, plan or pass plan can't be blank"),
        (body(playlist_id=PLAYLIST), "Only one of video, playlist, plan or pass plan"),
        (body(video_id="xyz"), "Video id is invalid"),
        (body(video_id=VIDEO[:-1]), "Video id is invalid"),
        (body(video_id=None, pass_plan_id=12), "Pass plan id is invalid"),
        (body(video_id="0" * 24), "Video not found"),
        (body(video_id=None, playlist_id="0" * 24), "Playlist not found"),
        (body(video_id=None, plan_id="0" * 24), "Plan not found"),
        (body(video_id=None, pass_plan_id="0" * 24), "Pass plan not found"),
    ],
)
async def test_invalid_bodies_are_422_and_create_nothing(
    sandbox: Sandbox, session: aiohttp.ClientSession, payload: Any, message: str
) -> None:
    url = f"{sandbox.url}/redemption_codes"
    if isinstance(payload, str):
        async with session.post(url, params={"api_key": KEY}, data=payload) as resp:
            status, data = resp.status, await resp.json()
    else:
        status, data = await post(session, sandbox, payload)
    assert status == 422
    assert data["message"].startswith(message)
    assert sandbox.state.codes == {}


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
async def test_a_missing_or_wrong_key_is_401(
    sandbox: Sandbox, session: aiohttp.ClientSession, key: str | None
) -> None:
    assert await post(session, sandbox, body(), key=key) == (
        401,
        {"message": "Invalid or missing API key"},
    )
    status, _, _ = await call(session, "GET", f"{sandbox.url}/redemption_codes", key=key)
    assert status == 401
    assert sandbox.state.codes == {}


async def test_the_key_may_come_in_the_x_zype_key_header(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    url = f"{sandbox.url}/redemption_codes"
    async with session.post(url, json=body(), headers={"x-zype-key": KEY}) as resp:
        assert resp.status == 201


async def test_the_read_only_key_reads_but_may_not_write(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    assert await post(session, sandbox, body(), key=READ_ONLY_KEY) == (
        403,
        {"message": "Forbidden"},
    )
    status, data, _ = await call(
        session, "GET", f"{sandbox.url}/redemption_codes", key=READ_ONLY_KEY
    )
    assert (status, data["response"]) == (200, [])
    assert sandbox.state.codes == {}


# --- reading and deleting ------------------------------------------------------------------------


async def test_listing_filters_by_code_and_follows_pagination(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    for n in range(25):
        assert (await post(session, sandbox, body(f"CODE{n:02d}")))[0] == 201
    url = f"{sandbox.url}/redemption_codes"

    seen: list[str] = []
    paginations: list[dict[str, Any]] = []
    page: int | None = 1
    while page is not None:
        status, data, _ = await call(session, "GET", url, page=page, per_page=10, video_id=VIDEO)
        assert status == 200
        seen += [c["code"] for c in data["response"]]
        paginations.append(data["pagination"])
        page = data["pagination"]["next"]
    assert seen == [f"CODE{n:02d}" for n in range(25)]
    assert paginations[0] == {"current": 1, "previous": None, "next": 2, "per_page": 10, "pages": 3}
    assert paginations[-1] == {
        "current": 3,
        "previous": 2,
        "next": None,
        "per_page": 10,
        "pages": 3,
    }

    _, data, _ = await call(session, "GET", url, code="code07")
    assert [c["code"] for c in data["response"]] == ["CODE07"]
    _, data, _ = await call(session, "GET", url, code="CODE0")  # exact match, not a prefix
    assert data["response"] == []
    _, data, _ = await call(session, "GET", url, playlist_id=PLAYLIST)
    assert data["response"] == []
    _, data, _ = await call(session, "GET", url)
    assert len(data["response"]) == 10
    _, data, _ = await call(session, "GET", url, per_page=500)
    assert data["pagination"]["per_page"] == 100
    assert len(data["response"]) == 25
    status, _, _ = await call(session, "GET", url, page="x")
    assert status == 422


async def test_one_code_by_id_or_code_then_deleted(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    _, created = await post(session, sandbox, body("Spring24"))
    obj = created["response"]
    base = f"{sandbox.url}/redemption_codes"
    for ref in (obj["_id"], "Spring24", "SPRING24"):
        assert await call(session, "GET", f"{base}/{ref}") == (200, {"response": obj}, ANY)
    assert (await call(session, "DELETE", f"{base}/{obj['_id']}"))[0] == 204
    not_found = (404, {"message": "Redemption code not found"}, ANY)
    assert await call(session, "GET", f"{base}/Spring24") == not_found
    assert await call(session, "DELETE", f"{base}/Spring24") == not_found
    assert sandbox.state.codes == {}
    assert sandbox.state.created_log == ["Spring24"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("PUT", "/redemption_codes")])
async def test_anything_else_is_a_json_404(
    sandbox: Sandbox, session: aiohttp.ClientSession, method: str, path: str
) -> None:
    status, data, resp = await call(session, method, f"{sandbox.url}{path}")
    assert (status, resp.content_type) == (404, "application/json")
    assert "message" in data


# --- faults --------------------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after_and_admits_at_most_the_limit(
    session: aiohttp.ClientSession,
) -> None:
    async with running_sandbox(KEY, Faults(rate_limit=20)) as sb:
        url = f"{sb.url}/redemption_codes"
        results = await asyncio.gather(*(call(session, "GET", url) for _ in range(60)))
    refused = [resp for status, _, resp in results if status == 429]
    assert refused
    assert all(resp.headers["Retry-After"] == "1" for resp in refused)
    assert {data["message"] for status, data, _ in results if status == 429} == {
        "Rate limit exceeded"
    }
    assert sb.state.rejected_429 == len(refused)
    assert sb.state.requests == sum(sb.state.per_second.values()) == 60
    assert len(sb.state.admitted) == 60 - len(refused)
    assert peak_in_window(sb.state.admitted) <= 20


async def test_error_rate_answers_503_without_applying(session: aiohttp.ClientSession) -> None:
    async with running_sandbox(KEY, Faults(error_rate=1.0)) as sb:
        assert await post(session, sb, body()) == (503, {"message": "Service Unavailable"})
    assert sb.state.codes == {}
    assert sb.state.faults_injected == 1


async def test_reset_drops_the_connection_without_applying(
    session: aiohttp.ClientSession,
) -> None:
    async with running_sandbox(KEY, Faults(reset_rate=1.0)) as sb:
        for _ in range(3):
            with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
                await post(session, sb, body())
    assert sb.state.codes == {}
    assert (sb.state.posts, sb.state.faults_injected) == (3, 3)


async def test_a_lost_answer_still_creates_the_code(session: aiohttp.ClientSession) -> None:
    async with running_sandbox(KEY, Faults(lost_rate=1.0)) as sb:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post(session, sb, body("LOST1"))
        # GETs are never lost, so the client can settle what happened by looking the code up.
        status, data, _ = await call(session, "GET", f"{sb.url}/redemption_codes", code="lost1")
    assert status == 200
    assert [c["code"] for c in data["response"]] == ["LOST1"]
    assert sb.state.created_log == ["LOST1"]


async def test_latency_delays_each_answer(session: aiohttp.ClientSession) -> None:
    async with running_sandbox(KEY, Faults(latency=0.2)) as sb:
        started = time.monotonic()
        status, _, _ = await call(session, "GET", f"{sb.url}/redemption_codes")
        assert time.monotonic() - started >= 0.2
    assert status == 200


async def test_a_seed_makes_faults_reproducible(session: aiohttp.ClientSession) -> None:
    statuses: list[list[int]] = []
    for _ in range(2):
        async with running_sandbox(KEY, Faults(error_rate=0.5, seed=7)) as sb:
            url = f"{sb.url}/redemption_codes"
            statuses.append([(await call(session, "GET", url))[0] for _ in range(20)])
    assert statuses[0] == statuses[1]
    assert {200, 503} == set(statuses[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"reset_rate": -0.1},
        {"lost_rate": 2},
        {"latency": -1},
        {"latency": float("inf")},
        {"rate_limit": 0},
        {"rate_limit": 0.5},
    ],
)
def test_impossible_faults_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Faults(**kwargs)


# --- helpers and entry points --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "peak"),
    [
        ([], 0),
        ([0.0], 1),
        ([0.0, 0.5, 0.99], 3),
        ([0.0, 0.5, 1.0], 2),  # the window is half-open: 0.0 has left it at 1.0
        ([0.0, 0.1, 0.2, 1.15, 1.16, 1.17, 1.18], 5),
    ],
)
def test_peak_in_window(times: list[float], peak: int) -> None:
    assert peak_in_window(times) == peak


def test_create_app_keeps_a_given_state() -> None:
    app = create_app(KEY)
    assert sandbox_state(app).codes == {}
    state = sandbox_state(app)
    assert sandbox_state(create_app(KEY, state=state)) is state


async def test_serve_prints_its_url_answers_and_stops_on_sigterm(
    session: aiohttp.ClientSession,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"from importer.sandbox import serve; serve({KEY!r}, port=0)",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("sandbox listening on http://127.0.0.1:")
        assert line.rstrip().endswith(f"(api key: {KEY})")
        url = line.split()[3]
        status, data, _ = await call(session, "GET", f"{url}/redemption_codes")
        assert (status, data["response"]) == (200, [])
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
