"""Loopback servers in a background thread, for tests that run the importer's own event loop.

The importer's ``run_file`` calls ``asyncio.run``, so the API it talks to must live in another
thread's loop: either the project's sandbox, or :func:`independent_api`, a deliberately separate,
minimal imitation of Zype's endpoint written from ``api/NOTES.md`` alone, so that end-to-end
tests do not only prove that the importer agrees with its own sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from importer.sandbox import Faults, SandboxState, running_sandbox

KEY = "test-key-5f2a9c"
_HEX24 = re.compile(r"[0-9a-f]{24}")
_KINDS = ("video_id", "playlist_id", "plan_id", "pass_plan_id")


@contextlib.contextmanager
def in_thread(factory: Callable[[], AbstractAsyncContextManager[Any]]) -> Iterator[Any]:
    """Enter the async context manager *factory()* in a loop on a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()
    try:
        value = asyncio.run_coroutine_threadsafe(stack.enter_async_context(factory()), loop).result(
            10
        )
        yield value
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class Served:
    """A running server: its base URL and what it holds."""

    url: str
    state: Any


@contextlib.contextmanager
def sandbox_in_thread(faults: Faults | None = None, key: str = KEY) -> Iterator[Served]:
    """The project's sandbox, on a loopback port, in a background thread."""
    with in_thread(lambda: running_sandbox(key, faults or Faults())) as sandbox:
        yield Served(sandbox.url, sandbox.state)


@dataclass
class IndependentState:
    """What the independent imitation holds: codes by upper-cased code string."""

    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: int = 0
    gets: int = 0


def _independent_app(key: str, state: IndependentState) -> web.Application:
    async def create(request: web.Request) -> web.Response:
        state.posts += 1
        if request.query.get("api_key") != key:
            return web.json_response({"message": "Invalid API key"}, status=401)
        try:
            fields = (await request.json())["redemption_code"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"message": "Bad request body"}, status=422)
        code = str(fields.get("code") or "")
        targets = [k for k in _KINDS if fields.get(k)]
        if not code or len(targets) != 1 or not _HEX24.fullmatch(str(fields[targets[0]])):
            return web.json_response({"message": "Redemption code is invalid"}, status=422)
        if code.upper() in state.codes:
            return web.json_response({"message": "Code has already been taken"}, status=422)
        obj = {
            "_id": secrets.token_hex(12),
            "code": code,
            "nice_code": code,
            "expiration_date": f"{fields.get('expiration_date')}T00:00:00.000-05:00",
        }
        obj.update({k: fields.get(k) for k in _KINDS})
        state.codes[code.upper()] = obj
        return web.json_response({"response": obj}, status=201)

    async def find(request: web.Request) -> web.Response:
        state.gets += 1
        if request.query.get("api_key") != key:
            return web.json_response({"message": "Invalid API key"}, status=401)
        found = state.codes.get(request.query.get("code", "").upper())
        pagination = {"current": 1, "previous": None, "next": None, "per_page": 10, "pages": 1}
        return web.json_response({"response": [found] if found else [], "pagination": pagination})

    app = web.Application()
    app.router.add_post("/redemption_codes", create)
    app.router.add_get("/redemption_codes", find)
    return app


@contextlib.asynccontextmanager
async def _independent(key: str, state: IndependentState) -> AsyncIterator[Served]:
    runner = web.AppRunner(_independent_app(key, state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(f"http://127.0.0.1:{port}", state)
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def independent_api(key: str = KEY) -> Iterator[Served]:
    """The independent imitation, on a loopback port, in a background thread."""
    state = IndependentState()
    with in_thread(lambda: _independent(key, state)) as served:
        yield served


__all__ = [
    "KEY",
    "IndependentState",
    "SandboxState",
    "Served",
    "independent_api",
    "sandbox_in_thread",
]
