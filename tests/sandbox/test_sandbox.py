"""The sandbox, driven over real loopback HTTP with aiohttp's client: no mocks."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest.mock import ANY

import aiohttp
import pytest

from importer.sandbox import (
    READ_ONLY_KEY,
    Faults,
    Sandbox,
    SandboxState,
    create_app,
    parse_instant,
    peak_in_window,
    running_sandbox,
    sandbox_state,
    stamp,
)

KEY = "test-key-0123456789"
VIDEO = "5c8e0a3b1f2e4d6a7b8c9d0e"
PLAYLIST = "6d9f1b4c2a3e5f7b8c9d0e1f"
PLAN = "7e0a2c5d3b4f6a8c9d0e1f2a"
PASS_PLAN = "8f1b3d6e4c5a7b9d0e1f2a3b"
ENTITLEMENT_FIELDS = ("video_id", "playlist_id", "plan_id", "pass_plan_id")
#: The sandbox account's zone.
EST = timezone(timedelta(hours=-5))


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
        {"old_flag_names": 2},
        {"old_flag_names": "yes"},
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


@pytest.mark.parametrize("others", [0, 3])
async def test_serve_prints_its_url_answers_and_stops_on_sigterm(
    session: aiohttp.ClientSession, others: int
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"from importer.sandbox import serve; serve({KEY!r}, port=0, others={others})",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("sandbox listening on http://127.0.0.1:")
        assert line.rstrip().endswith(f"(api key: {KEY})")
        url = line.split()[3]
        admin_line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert f"POST {url}/_sandbox/" in admin_line
        status, data, _ = await call(session, "GET", f"{url}/redemption_codes")
        assert (status, len(data["response"])) == (200, others)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- the clock, and helpers for the commands after create ----------------------------------------


class Clock:
    """A settable clock for ``SandboxState.now``."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def set(self, iso: str) -> None:
        self.moment = datetime.fromisoformat(iso)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2029, 12, 1, 10, 0, tzinfo=EST))


@pytest.fixture
async def clocked(clock: Clock) -> AsyncIterator[Sandbox]:
    async with running_sandbox(KEY, state=SandboxState(now=clock)) as sb:
        yield sb


async def create(session: aiohttp.ClientSession, sb: Sandbox, code: str, **fields: Any) -> Any:
    status, data = await post(session, sb, body(code, **fields))
    assert status == 201, data
    return data["response"]


async def put(
    session: aiohttp.ClientSession, sb: Sandbox, ref: str, fields: Any, key: str | None = KEY
) -> tuple[int, Any]:
    payload = {"redemption_code": fields} if isinstance(fields, dict) else fields
    status, data, _ = await call(
        session, "PUT", f"{sb.url}/redemption_codes/{ref}", key=key, json=payload
    )
    return status, data


async def listing(
    session: aiohttp.ClientSession, sb: Sandbox, params: Iterable[tuple[str, str]]
) -> tuple[int, Any]:
    query = [*params, ("api_key", KEY)]
    async with session.get(f"{sb.url}/redemption_codes", params=query) as resp:
        return resp.status, await resp.json()


# --- update --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"expiration_date": "2031-06-30"}, {"expiration_date": "2031-06-30T00:00:00.000-05:00"}),
        (
            {"code": "SUMMER2031XY"},
            {"code": "SUMMER2031XY", "nice_code": "SUMM-ER20-31XY", "video_id": VIDEO},
        ),
        ({"code": "promo2030"}, {"code": "promo2030"}),  # its own code in another case
        (
            {"playlist_id": PLAYLIST},
            {"playlist_id": PLAYLIST, "video_id": None, "content_type": "Playlist"},
        ),
        ({"plan_id": PLAN, "video_id": ""}, {"plan_id": PLAN, "video_id": None}),
        ({"pass_plan_id": PASS_PLAN}, {"pass_plan_id": PASS_PLAN, "content_type": "PassPlan"}),
        ({"video_id": PLAYLIST}, {"video_id": PLAYLIST, "content_type": "Video"}),
        ({}, {"code": "PROMO2030", "video_id": VIDEO}),
        ({"unknown": 1}, {"code": "PROMO2030"}),
    ],
)
async def test_put_replaces_the_fields_given_and_bumps_updated_at(
    clocked: Sandbox,
    clock: Clock,
    session: aiohttp.ClientSession,
    fields: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    created = await create(session, clocked, "PROMO2030")
    clock.set("2029-12-02T08:30:00-05:00")
    status, data = await put(session, clocked, created["_id"], fields)
    assert status == 200
    obj = data["response"]
    assert obj | expected == obj
    assert obj["updated_at"] == "2029-12-02T08:30:00.000-05:00"
    assert obj["created_at"] == created["created_at"] == "2029-12-01T10:00:00.000-05:00"
    assert sum(obj[name] is not None for name in ("video_id", "playlist_id", "plan_id")) <= 1
    state = clocked.state
    assert state.find_id(created["_id"]) == obj
    assert list(state.codes) == [obj["code"]]
    assert state.find(obj["code"].lower()) is state.find_id(obj["_id"])
    assert (state.puts, state.updated_log, state.created_log) == (1, [obj["_id"]], ["PROMO2030"])


async def test_put_recomputes_the_flags(clocked: Sandbox, session: aiohttp.ClientSession) -> None:
    created = await create(session, clocked, "PROMO2030")
    status, data = await put(session, clocked, created["_id"], {"expiration_date": "2029-11-30"})
    assert status == 200
    assert (data["response"]["expired"], data["response"]["available"]) == (True, False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("not json", "Request body is not valid JSON"),
        ([{"code": "X"}], "Redemption code is missing"),
        ({"code": ""}, "Code can't be blank"),
        ({"code": None}, "Code can't be blank"),
        ({"expiration_date": "30/01/2031"}, "Expiration date is invalid"),
        ({"expiration_date": ""}, "Expiration date can't be blank"),
        ({"video_id": ""}, "Video, playlist, plan or pass plan can't be blank"),
        ({"plan_id": PLAN, "playlist_id": PLAYLIST}, "Only one of video, playlist, plan"),
        ({"playlist_id": "nope"}, "Playlist id is invalid"),
        ({"plan_id": "0" * 24}, "Plan not found"),
        ({"code": "taken"}, "Code has already been taken"),
    ],
)
async def test_an_invalid_put_is_422_and_changes_nothing(
    sandbox: Sandbox, session: aiohttp.ClientSession, fields: Any, message: str
) -> None:
    await create(session, sandbox, "TAKEN")
    target = await create(session, sandbox, "PROMO2030")
    before = dict(target)
    if isinstance(fields, str):
        url = f"{sandbox.url}/redemption_codes/{target['_id']}"
        async with session.put(url, params={"api_key": KEY}, data=fields) as resp:
            status, data = resp.status, await resp.json()
    else:
        status, data = await put(session, sandbox, target["_id"], fields)
    assert status == 422
    assert data["message"].startswith(message)
    assert sandbox.state.find_id(target["_id"]) == before
    assert sorted(sandbox.state.codes) == ["PROMO2030", "TAKEN"]
    assert sandbox.state.updated_log == []


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_put_and_delete_take_an_id_only(
    sandbox: Sandbox, session: aiohttp.ClientSession, method: str
) -> None:
    await create(session, sandbox, "PROMO2030")
    for ref in ("PROMO2030", "0123456789abcdef01234567"):
        status, data, _ = await call(
            session, method, f"{sandbox.url}/redemption_codes/{ref}", json=body()
        )
        assert (status, data) == (404, {"message": "Redemption code not found"})
    assert list(sandbox.state.codes) == ["PROMO2030"]
    assert sandbox.state.updated_log == sandbox.state.deleted_log == []


@pytest.mark.parametrize(
    ("method", "key", "status"),
    [
        ("PUT", None, 401),
        ("PUT", "wrong", 401),
        ("PUT", READ_ONLY_KEY, 403),
        ("DELETE", None, 401),
        ("DELETE", READ_ONLY_KEY, 403),
    ],
)
async def test_put_and_delete_need_the_write_key(
    sandbox: Sandbox, session: aiohttp.ClientSession, method: str, key: str | None, status: int
) -> None:
    obj = await create(session, sandbox, "PROMO2030")
    url = f"{sandbox.url}/redemption_codes/{obj['_id']}"
    answer = await call(session, method, url, key=key, json=body("OTHER"))
    assert answer[0] == status
    assert sandbox.state.find_id(obj["_id"]) == obj
    assert sandbox.state.updated_log == sandbox.state.deleted_log == []


async def test_delete_is_204_once_then_404_and_is_counted(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    obj = await create(session, sandbox, "PROMO2030")
    url = f"{sandbox.url}/redemption_codes/{obj['_id']}"
    assert (await call(session, "DELETE", url))[:2] == (204, None)
    assert (await call(session, "DELETE", url))[0] == 404
    assert (await call(session, "GET", url))[0] == 404
    state = sandbox.state
    assert (state.deletes, state.deleted_log, state.codes) == (2, [obj["_id"]], {})
    # The code string is free again.
    assert (await post(session, sandbox, body("promo2030")))[0] == 201


async def raw_request(sb: Sandbox, method: str, path: str, payload: Any = None) -> bytes:
    """Everything the server sends back to one HTTP/1.1 request, until it closes: no client
    library in between that might send it again."""
    host, port = sb.url.removeprefix("http://").rsplit(":", 1)
    data = b"" if payload is None else json.dumps(payload).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nx-zype-key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    writer.write(head.encode() + data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_a_lost_answer_to_any_write_still_applies_it(method: str) -> None:
    async with running_sandbox(KEY, Faults(lost_rate=1.0)) as sb:
        mine = sb.state.admin_change(sb.state.seed_others(1)[0]["_id"], code="MINE")["_id"]
        if method == "POST":
            sb.state.admin_delete(mine)
        path = "/redemption_codes" if method == "POST" else f"/redemption_codes/{mine}"
        answer = await raw_request(sb, method, path, body("MINE", expiration_date="2031-02-02"))
        state = sb.state
        found = state.find_code("MINE")
    assert answer == b""  # FIN, no status line
    assert state.faults_injected == 1
    assert (state.posts, state.puts, state.deletes) == (
        int(method == "POST"),
        int(method == "PUT"),
        int(method == "DELETE"),
    )
    if method == "DELETE":
        assert (found, state.deleted_log) == (None, [mine])
    else:
        assert found is not None
        assert found["expiration_date"][:10] == "2031-02-02"
        assert state.updated_log == ([mine] if method == "PUT" else [])
        assert state.deleted_log == []


async def test_aiohttp_resends_a_delete_whose_answer_was_lost(
    session: aiohttp.ClientSession,
) -> None:
    """aiohttp (3.14) silently sends an idempotent request (PUT, DELETE) once more when the
    connection drops before the answer. So ``deletes`` may exceed what a client decided to
    send: prove exactly-once with ``deleted_log``, and read a 404 to a DELETE as "gone"."""
    async with running_sandbox(KEY, Faults(lost_rate=1.0)) as sb:
        obj = sb.state.seed_others(1)[0]
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call(session, "DELETE", f"{sb.url}/redemption_codes/{obj['_id']}")
    assert (sb.state.deletes, sb.state.deleted_log, sb.state.faults_injected) == (
        2,
        [obj["_id"]],
        2,
    )


# --- listing with filters ------------------------------------------------------------------------


@pytest.fixture
async def four(clocked: Sandbox, clock: Clock, session: aiohttp.ClientSession) -> dict[str, Any]:
    """Four codes made at known times; A redeemed and B changed by the admin on 2 January."""
    made: dict[str, Any] = {}
    plan: list[tuple[str, str, dict[str, Any]]] = [
        ("A", "2029-12-01T10:00:00-05:00", {}),
        ("B", "2029-12-31T23:30:00-05:00", {"video_id": None, "playlist_id": PLAYLIST}),
        ("C", "2030-01-01T00:00:00-05:00", {"video_id": None, "plan_id": PLAN}),
        ("D", "2030-01-02T09:00:00-05:00", {"video_id": None, "pass_plan_id": PASS_PLAN}),
    ]
    expirations = {"A": "2030-01-15", "B": "2030-03-01", "C": "2030-02-01", "D": "2030-01-15"}
    for name, when, fields in plan:
        clock.set(when)
        fields["expiration_date"] = expirations[name]
        made[name] = await create(session, clocked, f"code-{name}", **fields)
    clocked.state.redeem(made["A"]["_id"])
    clocked.state.admin_change("code-B", transaction_id="tx-1")
    return made


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], "ABCD"),
        ([("video_id", VIDEO)], "A"),
        ([("playlist_id", PLAYLIST)], "B"),
        ([("plan_id", PLAN)], "C"),
        ([("pass_plan_id", PASS_PLAN)], "D"),
        ([("plan_id", PLAYLIST)], ""),
        ([("transaction_id", "tx-1")], "B"),
        ([("code", "CODE-b")], "B"),
        ([("id", "{A}")], "A"),
        ([("id", "{A}"), ("code", "code-b")], ""),
        ([("id!", "{A}")], "BCD"),
        ([("q", "sandbox plan")], "C"),
        ([("created_at.gte", "2030-01-01")], "CD"),
        ([("created_at.gt", "2030-01-01")], "D"),
        ([("created_at.lt", "2030-01-01")], "AB"),
        ([("created_at.lte", "2030-01-01")], "ABC"),
        ([("created_at", "2030-01-01")], "C"),  # a bare date: that whole day
        ([("created_at", "2029-12-31T23:30:00.000-05:00")], "B"),  # a bare instant: just it
        ([("created_at.gte", "2030-01-01T04:00:00Z")], "BCD"),  # B is 04:30 UTC
        ([("created_at.gte", "2030-01-01T04:30:00.000+00:00")], "BCD"),
        ([("created_at.gt", "2030-01-01T04:30:00Z")], "CD"),
        ([("created_at.lt", "2029-12-31T23:30:00")], "A"),  # no offset: the account's zone
        ([("created_at.gte", "2030-01-01"), ("created_at.lt", "2030-01-02")], "C"),
        ([("created_at.gte", "2030-01-01"), ("video_id", VIDEO)], ""),
        ([("updated_at.gte", "2030-01-02")], "ABD"),
        ([("redeemed_at.gte", "2030-01-01")], "A"),
        ([("redeemed_at.lt", "2031-01-01")], "A"),  # a null redeemed_at matches no filter
        ([("expiration_date.gt", "2030-01-15")], "BC"),
        ([("expiration_date", "2030-01-15")], "AD"),
        ([("expiration_date.lte", "2030-01-15T00:00:00-05:00")], "AD"),
        ([("expiration_date.lt", "2030-01-15T00:00:00-05:00")], ""),
        ([("order", "created_at"), ("sort", "desc")], "ABCD"),  # not filters: ignored
    ],
)
async def test_list_filters(
    clocked: Sandbox,
    session: aiohttp.ClientSession,
    four: dict[str, Any],
    params: list[tuple[str, str]],
    expected: str,
) -> None:
    ids = {name: obj["_id"] for name, obj in four.items()}
    status, data = await listing(session, clocked, [(k, v.format(**ids)) for k, v in params])
    assert status == 200, data
    assert "".join(obj["code"][-1] for obj in data["response"]) == expected


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("created_at.gte", "yesterday", "created_at.gte must be a date (YYYY-MM-DD) or an ISO"),
        ("updated_at.lt", "2030-02-30", "updated_at.lt must be a date"),
        ("expiration_date", "", "expiration_date must be a date"),
        ("redeemed_at.lte", "0001-01-01T00:00:00+14:00", "redeemed_at.lte must be a date"),
        ("created_at", "9999-12-31", "created_at must be a date"),
        ("redeemed_at.after", "2030-01-01", "Unknown filter redeemed_at.after"),
        ("created_at.gte.x", "2030-01-01", "Unknown filter created_at.gte.x"),
    ],
)
async def test_a_bad_filter_is_422(
    sandbox: Sandbox, session: aiohttp.ClientSession, param: str, value: str, message: str
) -> None:
    status, data = await listing(session, sandbox, [(param, value)])
    assert status == 422
    assert data["message"].startswith(message)


async def test_filtered_pages_hold_other_peoples_codes_in_creation_order(
    session: aiohttp.ClientSession,
) -> None:
    async with running_sandbox(KEY, others=7) as sb:
        sb.state.seed_others(10, entitlements=[("video_id", VIDEO)], seed=1)
        mine = [(await create(session, sb, f"MINE{n}"))["_id"] for n in range(5)]
        sb.state.seed_others(12, entitlements=[("video_id", VIDEO), ("plan_id", PLAN)], seed=2)
        seen: list[Any] = []
        page: int | None = 1
        while page is not None:
            status, data = await listing(
                session, sb, [("video_id", VIDEO), ("page", str(page)), ("per_page", "4")]
            )
            assert status == 200
            seen += data["response"]
            page = data["pagination"]["next"]
            assert data["pagination"]["per_page"] == 4
        everything = [obj for obj in sb.state.ordered() if obj["video_id"] == VIDEO]
    assert [obj["_id"] for obj in seen] == [obj["_id"] for obj in everything]
    assert [obj["_id"] for obj in seen if obj["_id"] in mine] == mine
    assert 15 < len(seen) < 27
    assert len(sb.state.codes) == 7 + 10 + 5 + 12


# --- redemption state and flags ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        ("2030-01-15T23:59:59-05:00", False),  # good through its expiration date
        ("2030-01-16T04:59:59+00:00", False),  # still the 15th in the account's zone
        ("2030-01-16T00:00:00-05:00", True),
        ("2031-01-01T00:00:00-05:00", True),
    ],
)
async def test_expired_and_available_follow_the_clock(
    clocked: Sandbox, clock: Clock, session: aiohttp.ClientSession, now: str, expired: bool
) -> None:
    obj = await create(session, clocked, "PROMO2030")  # expires 2030-01-15
    assert (obj["expired"], obj["available"]) == (False, True)
    clock.set(now)
    _, one, _ = await call(session, "GET", f"{clocked.url}/redemption_codes/PROMO2030")
    _, listed = await listing(session, clocked, [])
    for answer in (one["response"], listed["response"][0]):
        assert (answer["expired"], answer["available"], answer["redeemed"]) == (
            expired,
            not expired,
            False,
        )
        assert answer["updated_at"] == obj["updated_at"]  # a flag turning is not an update


async def test_a_redeemed_code_reads_redeemed_and_unavailable(
    clocked: Sandbox, clock: Clock, session: aiohttp.ClientSession
) -> None:
    obj = await create(session, clocked, "PROMO2030")
    clock.set("2029-12-05T12:00:00-05:00")
    clocked.state.redeem("promo2030", when=datetime(2029, 12, 4, 17, 0, tzinfo=UTC))
    _, data, _ = await call(session, "GET", f"{clocked.url}/redemption_codes/{obj['_id']}")
    answer = data["response"]
    assert answer["redeemed"] is True
    assert answer["available"] is answer["expired"] is False
    assert answer["redeemed_at"] == "2029-12-04T12:00:00.000-05:00"
    assert answer["updated_at"] == "2029-12-05T12:00:00.000-05:00"
    assert clocked.state.admin_log == [("redeem", obj["_id"])]
    assert (clocked.state.posts, clocked.state.puts) == (1, 0)


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/redemption_codes", body("NEW1")),
        ("GET", "/redemption_codes/OLD1", None),
        ("GET", "/redemption_codes", None),
        ("PUT", "/redemption_codes/{id}", body("OLD1", expiration_date="2031-01-01")),
        ("POST", "/_sandbox/redeem/OLD1", None),
        ("POST", "/_sandbox/change/OLD1", {"transaction_id": "t"}),
    ],
)
async def test_old_flag_names_spell_every_answers_flags_with_a_question_mark(
    session: aiohttp.ClientSession, method: str, path: str, payload: Any
) -> None:
    async with running_sandbox(KEY, Faults(old_flag_names=True)) as sb:
        old = await create(session, sb, "OLD1")
        status, data, _ = await call(
            session, method, sb.url + path.format(id=old["_id"]), json=payload
        )
    assert status in (200, 201)
    answers = data["response"] if isinstance(data["response"], list) else [data["response"]]
    assert answers
    for answer in answers:
        assert {"available?", "redeemed?", "expired?"} <= answer.keys()
        assert not {"available", "redeemed", "expired"} & answer.keys()
    # The state keeps one spelling, so tests read it the same either way.
    assert {"available", "redeemed", "expired"} <= sb.state.codes["OLD1"].keys()


def test_the_cli_spelling_of_old_flag_names_is_a_bool() -> None:
    assert Faults(old_flag_names=1.0).old_flag_names is True  # type: ignore[arg-type]
    assert Faults(old_flag_names=0).old_flag_names is False


# --- time values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stamped"),
    [
        ("2031-01-01", "2031-01-01T00:00:00.000-05:00"),
        ("2031-01-01T05:00:00Z", "2031-01-01T00:00:00.000-05:00"),
        ("2031-01-01T12:34:56.789123+02:00", "2031-01-01T05:34:56.789-05:00"),
        ("2031-01-01T12:00", "2031-01-01T12:00:00.000-05:00"),  # no offset: the account's
    ],
)
def test_times_are_read_as_instants_and_written_in_the_account_zone(
    value: str, stamped: str
) -> None:
    assert stamp(parse_instant(value)) == stamped


@pytest.mark.parametrize("value", ["", "tomorrow", "2031-02-30", "01/02/2031"])
def test_unreadable_times_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a date or an ISO 8601 timestamp"):
        parse_instant(value)


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        stamp(datetime(2031, 1, 1))  # naive on purpose


# --- the admin and customers, as methods ---------------------------------------------------------


@pytest.fixture
def state(clock: Clock) -> SandboxState:
    """A state holding one API-created video code, PROMO2030, expiring 2030-01-15."""
    st = SandboxState(now=clock)
    st.add(
        {
            "_id": "c" * 24,
            "code": "PROMO2030",
            "nice_code": "PROM-O203-0",
            "content_title": "t",
            "content_type": "Video",
            "expiration_date": "2030-01-15T00:00:00.000-05:00",
            "video_id": VIDEO,
            "playlist_id": None,
            "plan_id": None,
            "pass_plan_id": None,
            "transaction_id": None,
            "redeemed_at": None,
            "site_id": st.site_id,
            "created_at": "2029-12-01T10:00:00.000-05:00",
            "updated_at": "2029-12-01T10:00:00.000-05:00",
            "available": True,
            "redeemed": False,
            "expired": False,
        }
    )
    clock.set("2029-12-03T09:00:00-05:00")
    return st


def untouched_counters(st: SandboxState) -> tuple[int, ...]:
    return (st.requests, st.posts, st.puts, st.deletes, len(st.updated_log), len(st.deleted_log))


@pytest.mark.parametrize("ref", ["c" * 24, "PROMO2030", "promo2030"])
def test_redeem_by_id_or_code(state: SandboxState, ref: str) -> None:
    obj = state.redeem(ref)
    assert (obj["redeemed"], obj["available"], obj["expired"]) == (True, False, False)
    assert obj["redeemed_at"] == obj["updated_at"] == "2029-12-03T09:00:00.000-05:00"
    assert state.admin_log == [("redeem", "c" * 24)]
    assert untouched_counters(state) == (0,) * 6
    assert state.created_log == ["PROMO2030"]


@pytest.mark.parametrize(
    ("setup", "when", "error", "match"),
    [
        (None, None, KeyError, "NOPE"),
        ("redeem", None, ValueError, "already been redeemed"),
        (None, datetime(2030, 1, 16, tzinfo=EST), ValueError, "had expired by 2030-01-16"),
    ],
)
def test_redeem_refuses(
    state: SandboxState,
    setup: str | None,
    when: datetime | None,
    error: type[Exception],
    match: str,
) -> None:
    if setup == "redeem":
        state.redeem("PROMO2030")
    with pytest.raises(error, match=match):
        state.redeem("NOPE" if error is KeyError else "PROMO2030", when)


def test_admin_delete_is_not_an_api_delete(state: SandboxState) -> None:
    gone = state.admin_delete("promo2030")
    assert gone["_id"] == "c" * 24
    assert state.codes == {}
    assert state.find_id("c" * 24) is None
    assert state.admin_log == [("delete", "c" * 24)]
    assert untouched_counters(state) == (0,) * 6
    with pytest.raises(KeyError):
        state.admin_delete("PROMO2030")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"transaction_id": "tx-9"}, {"transaction_id": "tx-9"}),
        ({"plan_id": PLAN}, {"plan_id": PLAN, "video_id": None, "content_type": "Plan"}),
        ({"code": "Renamed"}, {"code": "Renamed", "nice_code": "Rena-med"}),
        (
            {"expiration_date": "2029-12-02"},
            {"expiration_date": "2029-12-02T00:00:00.000-05:00", "expired": True},
        ),
        (
            {"redeemed": True},
            {"redeemed": True, "redeemed_at": "2029-12-03T09:00:00.000-05:00", "available": False},
        ),
        (
            {"redeemed_at": "2029-12-02T08:00:00Z"},
            {"redeemed": True, "redeemed_at": "2029-12-02T03:00:00.000-05:00"},
        ),
        (
            {"created_at": datetime(2029, 1, 1, tzinfo=EST), "updated_at": "2029-01-02"},
            {
                "created_at": "2029-01-01T00:00:00.000-05:00",
                "updated_at": "2029-01-02T00:00:00.000-05:00",
            },
        ),
        ({}, {"updated_at": "2029-12-03T09:00:00.000-05:00"}),
    ],
)
def test_admin_change(
    state: SandboxState, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    obj = state.admin_change("PROMO2030", **fields)
    assert obj | expected == obj
    assert state.find_id("c" * 24) is obj
    assert state.find(obj["code"].upper()) is obj
    assert state.admin_log == [("change", "c" * 24)]
    assert untouched_counters(state) == (0,) * 6


def test_admin_change_can_undo_a_redemption(state: SandboxState) -> None:
    state.redeem("PROMO2030")
    obj = state.admin_change("PROMO2030", redeemed=False)
    assert (obj["redeemed"], obj["redeemed_at"], obj["available"]) == (False, None, True)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"colour": "red"}, "unknown field"),
        ({"code": ""}, "Code can't be blank"),
        ({"code": "taken"}, "Code has already been taken"),
        ({"video_id": "0" * 24}, "Video not found"),
        ({"redeemed": "yes"}, "redeemed must be true or false"),
        ({"redeemed": False, "redeemed_at": "2030-01-01"}, "disagree"),
        ({"redeemed_at": "soon"}, "redeemed_at must be a date"),
        ({"created_at": None}, "created_at must be a date"),
        ({"updated_at": datetime(2030, 1, 1)}, "updated_at must be a date"),
        ({"transaction_id": 7}, "transaction_id must be a string"),
        ({"transaction_id": 7, "code": "NEWNAME"}, "transaction_id must be a string"),
    ],
)
def test_admin_change_refuses_and_changes_nothing(
    state: SandboxState, fields: dict[str, Any], match: str
) -> None:
    state.seed_others(0)
    other = state.seed_others(1, seed=3)[0]
    state.admin_change(other["_id"], code="TAKEN")
    before = {k: dict(v) for k, v in state.codes.items()}
    log = list(state.admin_log)
    with pytest.raises(ValueError, match=match):
        state.admin_change("PROMO2030", **fields)
    assert state.codes == before
    assert state.admin_log == log


@pytest.mark.parametrize(
    ("entitlements", "kinds"),
    [
        ((), {"video_id", "playlist_id", "plan_id", "pass_plan_id"}),
        ([("plan_id", PLAN)], {"plan_id"}),
        ([("video_id", VIDEO), ("playlist_id", PLAYLIST)], {"video_id", "playlist_id"}),
    ],
)
def test_seed_others(
    state: SandboxState, entitlements: list[tuple[str, str]], kinds: set[str]
) -> None:
    made = state.seed_others(200, entitlements=entitlements, seed=5)
    assert len(made) == len({obj["code"].casefold() for obj in made}) == 200
    assert len(state.codes) == 201
    assert {name for obj in made for name in kinds if obj[name] is not None} == kinds
    for obj in made:
        assert re.fullmatch(r"[A-Z0-9]{16}", obj["code"])
        assert obj["created_at"] == obj["updated_at"] == "2029-12-03T09:00:00.000-05:00"
        assert (obj["available"], obj["redeemed"], obj["expired"]) == (True, False, False)
        assert obj["site_id"] == state.site_id
        (kind,) = [name for name in ENTITLEMENT_FIELDS if obj[name] is not None]
        assert re.fullmatch(r"[0-9a-f]{24}", obj[kind])
        if entitlements:
            assert (kind, obj[kind]) in entitlements
    assert state.created_log == ["PROMO2030"]  # not API creates
    assert [action for action, _ in state.admin_log] == ["others"] * 200
    again = SandboxState(now=state.now).seed_others(200, entitlements=entitlements, seed=5)
    assert [obj["code"] for obj in again] == [obj["code"] for obj in made]


@pytest.mark.parametrize(
    ("count", "entitlements", "match"),
    [
        (-1, (), "count must be at least 0"),
        (1, [("video", VIDEO)], "not an entitlement"),
        (1, [("video_id", "xyz")], "not an entitlement"),
    ],
)
def test_seed_others_refuses(
    state: SandboxState, count: int, entitlements: list[tuple[str, str]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        state.seed_others(count, entitlements=entitlements)
    assert len(state.codes) == 1


# --- the admin and customers, over HTTP ----------------------------------------------------------


async def admin(
    session: aiohttp.ClientSession,
    sb: Sandbox,
    path: str,
    key: str | None = KEY,
    payload: Any = None,
    **params: Any,
) -> tuple[int, Any]:
    status, data, _ = await call(
        session,
        "POST" if path != "stats" else "GET",
        f"{sb.url}/_sandbox/{path}",
        key=key,
        json=payload,
        **params,
    )
    return status, data


async def test_admin_endpoints_act_without_counting_as_api_traffic(
    clocked: Sandbox, clock: Clock, session: aiohttp.ClientSession
) -> None:
    st = clocked.state
    own = [await create(session, clocked, f"OWN{n}") for n in range(3)]
    baseline = untouched_counters(st)
    clock.set("2029-12-05T12:00:00-05:00")

    status, data = await admin(session, clocked, "redeem/own0", at="2029-12-04T10:00:00Z")
    assert status == 200
    assert data["response"]["redeemed_at"] == "2029-12-04T05:00:00.000-05:00"
    status, data = await admin(session, clocked, f"redeem/{own[1]['_id']}")
    assert (status, data["response"]["redeemed_at"]) == (200, "2029-12-05T12:00:00.000-05:00")

    status, data = await admin(
        session, clocked, "change/OWN2", payload={"transaction_id": "tx", "plan_id": PLAN}
    )
    assert status == 200
    assert (data["response"]["transaction_id"], data["response"]["plan_id"]) == ("tx", PLAN)

    status, data = await admin(session, clocked, "others", count=4, video_id=VIDEO, seed=1)
    assert status == 201
    assert [obj["video_id"] for obj in data["response"]] == [VIDEO] * 4

    status, data = await admin(session, clocked, "delete/OWN2")
    assert (status, data["response"]["_id"]) == (200, own[2]["_id"])
    assert st.find("OWN2") is None

    status, data = await admin(session, clocked, "stats")
    assert status == 200
    assert (
        data["response"] | {"codes": 6, "posts": 3, "created": 3, "deleted": 0}
        == (data["response"])
    )
    assert untouched_counters(st) == baseline
    assert [action for action, _ in st.admin_log] == [
        "redeem",
        "redeem",
        "change",
        *["others"] * 4,
        "delete",
    ]


@pytest.mark.parametrize(
    ("path", "params", "payload", "status", "message"),
    [
        ("redeem/NOPE", {}, None, 404, "Redemption code not found"),
        ("delete/NOPE", {}, None, 404, "Redemption code not found"),
        ("change/NOPE", {}, {"code": "X"}, 404, "Redemption code not found"),
        ("redeem/OWN0", {"at": "whenever"}, None, 422, "at must be a date"),
        ("redeem/OWN0", {"at": "2031-01-01"}, None, 422, "OWN0 had expired by 2031-01-01"),
        ("change/OWN0", {}, [1], 422, "send a JSON object"),
        ("change/OWN0", {}, {"colour": "red"}, 422, "unknown field(s) colour"),
        ("others", {"count": "many"}, None, 422, "count and seed must be whole numbers"),
        ("others", {"count": "2", "plan_id": "nope"}, None, 422, "not an entitlement"),
        ("nothing-here", {}, None, 404, "Not found"),
    ],
)
async def test_admin_endpoints_refuse(
    sandbox: Sandbox,
    session: aiohttp.ClientSession,
    path: str,
    params: dict[str, str],
    payload: Any,
    status: int,
    message: str,
) -> None:
    await create(session, sandbox, "OWN0")
    answer = await admin(session, sandbox, path, payload=payload, **params)
    assert answer[0] == status
    assert answer[1]["message"].startswith(message)
    assert list(sandbox.state.codes) == ["OWN0"]
    assert sandbox.state.admin_log == []


async def test_admin_change_refuses_a_body_that_is_not_json(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    await create(session, sandbox, "OWN0")
    url = f"{sandbox.url}/_sandbox/change/OWN0"
    async with session.post(url, params={"api_key": KEY}, data="{") as resp:
        assert (resp.status, await resp.json()) == (
            422,
            {"message": "Request body is not valid JSON"},
        )


@pytest.mark.parametrize("path", ["redeem/OWN0", "delete/OWN0", "change/OWN0", "others", "stats"])
@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong", 401), (READ_ONLY_KEY, 403)])
async def test_admin_endpoints_need_the_sandbox_key(
    sandbox: Sandbox, session: aiohttp.ClientSession, path: str, key: str | None, status: int
) -> None:
    await create(session, sandbox, "OWN0")
    before = {k: dict(v) for k, v in sandbox.state.codes.items()}
    answer = await admin(session, sandbox, path, key=key, payload={"code": "X"})
    assert answer[0] == status
    assert sandbox.state.codes == before


async def test_no_fault_touches_the_admin_endpoints(session: aiohttp.ClientSession) -> None:
    faults = Faults(reset_rate=1.0, error_rate=1.0, lost_rate=1.0, rate_limit=1, latency=0.5)
    async with running_sandbox(KEY, faults, others=2) as sb:
        started = time.monotonic()
        status, data = await admin(session, sb, "others", count=3)
        assert status == 201
        assert (await admin(session, sb, f"delete/{data['response'][0]['_id']}"))[0] == 200
        assert (await admin(session, sb, "stats"))[0] == 200
        assert time.monotonic() - started < 0.5
    assert len(sb.state.codes) == 4
    assert (sb.state.requests, sb.state.faults_injected, sb.state.rejected_429) == (0, 0, 0)


@pytest.mark.parametrize("kind", ENTITLEMENT_FIELDS)
def test_create_and_update_write_the_same_content_fields(kind: str) -> None:
    # The create path spells the fields out for speed; this keeps it in step with updates.
    from importer.sandbox import _check, _content_fields, _new_code

    _, content = _check({"code": "ABCDEFGHIJ", "expiration_date": "2030-01-15", kind: PLAN})
    assert content is not None
    created = _new_code(content, "a" * 24, "b" * 24, datetime(2029, 1, 1, tzinfo=EST))
    assert created | _content_fields(content) == created
