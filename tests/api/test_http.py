"""The aiohttp boundary, against real loopback servers: what goes out, what comes back."""

from __future__ import annotations

import asyncio
import json
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from importer.api import wire
from importer.api.http import HttpSender, _parse, open_session
from importer.api.wire import Answer, Request
from importer.config import ApiConfig
from importer.errors import ApiUnavailableError, TransportError

KEY = "CANARY-KEY-1234567890"
PAYLOAD = {"redemption_code": {"code": "A1", "expiration_date": "2030-01-15", "video_id": "f" * 24}}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """What a test server received."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[str, Seen]]]]:
    """Start a loopback server answering every path with a handler; yields (url, seen)."""
    servers: list[TestServer] = []

    async def start(handler: Handler) -> tuple[str, Seen]:
        seen = Seen()

        async def record(request: web.Request) -> web.StreamResponse:
            seen.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": dict(request.query),
                    "headers": dict(request.headers),
                    "body": await request.read(),
                }
            )
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/"), seen

    yield start
    for server in servers:
        await server.close()


def api(url: str, **changes: Any) -> ApiConfig:
    return ApiConfig(url=url, total_timeout=2.0, connect_timeout=1.0, **changes)


def answer_with(status: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, headers=headers)

    return handler


async def call(config: ApiConfig, method: str, arg: Any, key: str = KEY) -> Answer:
    async with open_session(config, 2) as session:
        sender = HttpSender(session, config, key)
        if method == "create":
            return await sender.send(Request("POST", body=orjson.dumps(arg)))
        return await sender.send(wire.find(arg))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- what goes out -------------------------------------------------------------------------------


async def test_create_posts_json_with_the_key_as_a_query_parameter(serve: Any) -> None:
    url, seen = await serve(answer_with(201, {"response": {"_id": "x"}}))
    answer = await call(api(url), "create", PAYLOAD)
    assert answer == Answer(201, {"response": {"_id": "x"}})
    [request] = seen.requests
    assert (request["method"], request["path"]) == ("POST", "/redemption_codes")
    assert request["query"] == {"api_key": KEY}
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == PAYLOAD
    assert "x-zype-key" not in {h.lower() for h in request["headers"]}


async def test_a_key_with_reserved_characters_arrives_intact_in_both_calls(serve: Any) -> None:
    # The POST's URL is built once, ahead of time; the lookup's per call. Both must encode it.
    key = "k/ey+with &=%?#é"
    url, seen = await serve(answer_with(201, {"response": {"_id": "x"}}))
    await call(api(url), "create", PAYLOAD, key=key)
    await call(api(url), "find", "A1", key=key)
    assert [r["query"]["api_key"] for r in seen.requests] == [key, key]
    assert [r["path"] for r in seen.requests] == ["/redemption_codes"] * 2


async def test_the_key_can_go_as_a_header_instead(serve: Any) -> None:
    url, seen = await serve(answer_with(201, {"response": {"_id": "x"}}))
    await call(api(url, key_in="header"), "create", PAYLOAD)
    await call(api(url, key_in="header"), "find", "A1")
    for request in seen.requests:
        assert request["headers"]["x-zype-key"] == KEY
        assert "api_key" not in request["query"]


async def test_find_asks_for_the_exact_code(serve: Any) -> None:
    url, seen = await serve(answer_with(200, {"response": []}))
    answer = await call(api(url + "/"), "find", "A 1&b")
    assert answer.status == 200
    [request] = seen.requests
    assert (request["method"], request["path"]) == ("GET", "/redemption_codes")
    assert request["query"] == {"api_key": KEY, "code": "A 1&b", "per_page": "100"}


# --- what comes back -----------------------------------------------------------------------------


async def test_a_redirect_is_returned_not_followed(serve: Any) -> None:
    url, seen = await serve(answer_with(302, "", {"Location": "/elsewhere"}))
    answer = await call(api(url), "create", PAYLOAD)
    assert answer.status == 302
    assert seen.methods() == ["POST"]  # aiohttp would have re-sent it as a GET, body dropped


async def test_retry_after_and_odd_bodies_come_back_as_they_are(serve: Any) -> None:
    url, _ = await serve(answer_with(429, "<html>slow down</html>", {"Retry-After": "7"}))
    answer = await call(api(url), "create", PAYLOAD)
    assert answer == Answer(429, "<html>slow down</html>", "7")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b'{"response": {"_id": "x"}}', {"response": {"_id": "x"}}),
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a BOM: orjson refuses it, json takes it
        ('{"a": 1}'.encode("utf-16"), {"a": 1}),
        (b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (b"", None),
    ],
)
def test_answers_parse_as_json_else_as_text(raw: bytes, parsed: Any) -> None:
    assert _parse(raw) == parsed


async def test_an_empty_body_is_none(serve: Any) -> None:
    url, _ = await serve(answer_with(503, ""))
    assert await call(api(url), "create", PAYLOAD) == Answer(503, None)


async def test_a_body_echoing_the_key_comes_back_without_it(serve: Any) -> None:
    page = f"<html>400 Bad Request: /redemption_codes?api_key={KEY}</html>"
    url, _ = await serve(answer_with(400, page))
    answer = await call(api(url), "create", PAYLOAD)
    assert answer.status == 400
    assert KEY not in answer.body
    assert "***" in answer.body


# --- failures: redacted, and honest about whether the request may have gone ----------------------


def full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


@pytest.mark.parametrize("key_in", ["query", "header"])
async def test_a_closed_port_was_never_sent(key_in: str) -> None:
    config = api(f"http://127.0.0.1:{closed_port()}", key_in=key_in)
    with pytest.raises(TransportError) as caught:
        await call(config, "create", PAYLOAD)
    assert caught.value.maybe_sent is False
    assert caught.value.message.startswith("cannot connect")
    assert KEY not in full_text(caught.value)


async def drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection once the request is in, without answering."""
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def test_a_dropped_connection_may_have_been_applied(serve: Any) -> None:
    url, _ = await serve(drop_connection)
    with pytest.raises(TransportError) as caught:
        await call(api(url), "create", PAYLOAD)
    assert caught.value.maybe_sent is True
    assert KEY not in full_text(caught.value)


async def test_a_dropped_lookup_is_not_silently_sent_again(serve: Any) -> None:
    """aiohttp re-sends an idempotent request on a dead connection, bypassing the limiter."""

    url, seen = await serve(drop_connection)
    with pytest.raises(TransportError):
        await call(api(url), "find", "A1")
    assert seen.methods() == ["GET"]
    # The check above means something: a plain session does send it twice.
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            await plain.get(f"{url}/redemption_codes")
    assert seen.methods() == ["GET", "GET", "GET"]


async def test_a_slow_answer_times_out_as_maybe_sent(serve: Any) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=201)

    url, _ = await serve(slow)
    config = ApiConfig(url=url, total_timeout=0.1, connect_timeout=0.1)
    try:
        with pytest.raises(TransportError) as caught:
            await call(config, "create", PAYLOAD)
    finally:
        release.set()
    assert caught.value.maybe_sent is True
    assert caught.value.message.startswith("timed out")


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ConnectionTimeoutError(f"Connection timeout to host http://h/r?api_key={KEY}"),
        aiohttp.ClientOSError(f"cannot write request body for http://h/r?api_key={KEY}&x=1"),
        aiohttp.ClientPayloadError(f"x-zype-key: {KEY}"),
        TimeoutError(),
    ],
)
def test_error_texts_never_carry_the_key(exc: BaseException) -> None:
    sender = HttpSender(None, api("http://h"), KEY)  # type: ignore[arg-type]
    text = sender._describe(exc)
    assert KEY not in text
    assert text


def test_a_percent_encoded_key_is_redacted_too() -> None:
    key = "k/ey+with=odd&chars"
    sender = HttpSender(None, api("http://h"), key)  # type: ignore[arg-type]
    text = sender._describe(aiohttp.ClientOSError("http://h/r?code=x&api_key=k%2Fey%2Bwith"))
    text += sender._describe(aiohttp.ClientOSError("header k%2Fey%2Bwith%3Dodd%26chars sent"))
    assert "k%2Fey" not in text
    assert key not in text


async def test_a_short_key_leaves_messages_whole_but_never_shows_as_a_key(serve: Any) -> None:
    # Bare-text removal of a one-letter key would turn "taken" into "ta***en".
    url, _ = await serve(answer_with(422, {"message": "Code has already been taken"}))
    answer = await call(api(url), "create", PAYLOAD, key="k")
    assert answer.body == {"message": "Code has already been taken"}
    url, _ = await serve(answer_with(400, "<html>Bad Request: /r?code=A&api_key=k</html>"))
    answer = await call(api(url), "create", PAYLOAD, key="k")
    assert answer.body == "<html>Bad Request: /r?code=A&api_key=***</html>"
    sender = HttpSender(None, api("http://h"), "k")  # type: ignore[arg-type]
    text = sender._describe(aiohttp.ClientOSError("http://h/r?api_key=k (x-zype-key: k) taken"))
    assert text.endswith("http://h/r?api_key=*** (x-zype-key: ***) taken)")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "http://"])
async def test_an_unusable_url_stops_the_run_at_once(url: str) -> None:
    with pytest.raises(ApiUnavailableError, match=r"api\.url") as caught:
        await call(api(url), "create", PAYLOAD)
    assert KEY not in full_text(caught.value)


async def test_the_session_bounds_its_timeouts_and_connections() -> None:
    config = ApiConfig(total_timeout=12.0, connect_timeout=3.0)
    async with open_session(config, 7) as session:
        assert session.timeout.total == 12.0
        assert session.timeout.sock_connect == 3.0
        assert session.connector is not None
        assert session.connector.limit == 7
