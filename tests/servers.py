"""Loopback servers in a background thread, for tests that run the importer's own event loop.

The importer's ``run_file`` calls ``asyncio.run``, so the API it talks to must live in another
thread's loop: either the project's sandbox, or :func:`independent_api`, a deliberately separate,
minimal imitation of Zype's endpoints written from ``api/NOTES.md`` alone (create; list by code,
entitlement and ``created_at.gte``/``.lte``, paged; get; PUT and DELETE by id; live flags), so that
end-to-end tests do not only prove that the importer agrees with its own sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
def sandbox_in_thread(
    faults: Faults | None = None,
    key: str = KEY,
    *,
    others: int = 0,
    state: SandboxState | None = None,
) -> Iterator[Served]:
    """The project's sandbox, on a loopback port, in a background thread.

    `others` codes of other people are there from the start; `state` (e.g. with a test clock)
    is used if given. The state's admin methods are plain code: call them between runs, not
    while the importer is sending.
    """
    with in_thread(
        lambda: running_sandbox(key, faults or Faults(), others=others, state=state)
    ) as sandbox:
        yield Served(sandbox.url, sandbox.state)


#: Zype answers in the account's zone; this one's is UTC-5, like NOTES.md's example.
_ZONE = timezone(timedelta(hours=-5))
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _hex24(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(24))


@dataclass
class IndependentState:
    """What the independent imitation holds: codes by upper-cased code string.

    ``by_id`` holds the same objects by ``_id``, in creation order. ``updated`` and ``deleted``
    list the ``_id`` of every successful PUT and DELETE. The methods act as Zype's admin and
    customers would; they are not requests and count nowhere. ``now`` is its clock.
    """

    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: int = 0
    gets: int = 0
    puts: int = 0
    deletes: int = 0
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(_ZONE))

    def lookup(self, ref: str) -> dict[str, Any] | None:
        """The code with this ``_id`` or this code string (any case), or None."""
        return self.by_id.get(ref) or self.codes.get(ref.upper())

    def put(self, obj: dict[str, Any]) -> None:
        self.codes[obj["code"].upper()] = obj
        self.by_id[obj["_id"]] = obj

    def stamp(self) -> str:
        return self.now().astimezone(_ZONE).isoformat(timespec="milliseconds")

    def redeem(self, ref: str, when: datetime | None = None) -> None:
        """A customer redeems the code (by ``_id`` or code string)."""
        obj = self.by_id.get(ref) or self.codes[ref.upper()]
        obj["redeemed_at"] = (when or self.now()).astimezone(_ZONE).isoformat()
        obj["updated_at"] = self.stamp()

    def admin_delete(self, ref: str) -> None:
        """The admin deletes the code in Zype's dashboard."""
        obj = self.by_id.pop(ref, None) or self.codes[ref.upper()]
        self.by_id.pop(obj["_id"], None)
        del self.codes[obj["code"].upper()]

    def add_others(
        self, count: int, kind: str = "", target: str = "", seed: int | None = None
    ) -> None:
        """`count` codes of other people, created now: for `kind`=`target` if given, else random."""
        rng = random.Random(seed)
        for _ in range(count):
            code = ""
            while not code or code in self.codes:
                code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(16))
            which = kind or rng.choice(_KINDS)
            self.put(
                _code_object(
                    self,
                    _hex24(rng),
                    {"code": code, "expiration_date": "2099-12-31", which: target or _hex24(rng)},
                )
            )


def _code_object(state: IndependentState, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "_id": object_id,
        "code": fields["code"],
        "nice_code": fields["code"],
        "expiration_date": f"{fields.get('expiration_date')}T00:00:00.000-05:00",
        "transaction_id": None,
        "redeemed_at": None,
        "created_at": state.stamp(),
        "updated_at": state.stamp(),
    }
    obj.update({k: fields.get(k) for k in _KINDS})
    return obj


def _answer(state: IndependentState, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with its flags as of now."""
    today = state.now().astimezone(_ZONE).date().isoformat()
    expired = obj["expiration_date"][:10] < today
    redeemed = obj["redeemed_at"] is not None
    return {**obj, "redeemed": redeemed, "expired": expired, "available": not (redeemed or expired)}


def _instant(text: str) -> datetime:
    """A list filter's time: a bare date is midnight at its start in the account's zone."""
    if _DAY.fullmatch(text):
        return datetime.fromisoformat(text).replace(tzinfo=_ZONE)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=_ZONE)


def _independent_app(key: str, state: IndependentState) -> web.Application:
    def refused(request: web.Request) -> web.Response | None:
        if request.query.get("api_key") != key:
            return web.json_response({"message": "Invalid API key"}, status=401)
        return None

    async def body_fields(request: web.Request) -> dict[str, Any] | None:
        try:
            fields = (await request.json())["redemption_code"]
        except (ValueError, KeyError, TypeError):
            return None
        return fields if isinstance(fields, dict) else None

    async def create(request: web.Request) -> web.Response:
        state.posts += 1
        if (answer := refused(request)) is not None:
            return answer
        fields = await body_fields(request)
        if fields is None:
            return web.json_response({"message": "Bad request body"}, status=422)
        code = str(fields.get("code") or "")
        targets = [k for k in _KINDS if fields.get(k)]
        if not code or len(targets) != 1 or not _HEX24.fullmatch(str(fields[targets[0]])):
            return web.json_response({"message": "Redemption code is invalid"}, status=422)
        if code.upper() in state.codes:
            return web.json_response({"message": "Code has already been taken"}, status=422)
        obj = _code_object(state, secrets.token_hex(12), fields)
        state.put(obj)
        return web.json_response({"response": _answer(state, obj)}, status=201)

    async def update(request: web.Request) -> web.Response:
        state.puts += 1
        if (answer := refused(request)) is not None:
            return answer
        obj = state.by_id.get(request.match_info["id"])
        if obj is None:
            return web.json_response({"message": "Not found"}, status=404)
        fields = await body_fields(request)
        if fields is None:
            return web.json_response({"message": "Bad request body"}, status=422)
        code = str(fields.get("code", obj["code"]) or "")
        targets = [k for k in _KINDS if fields.get(k)]
        expiration = fields.get("expiration_date", obj["expiration_date"][:10])
        if (
            not code
            or len(targets) > 1
            or not all(_HEX24.fullmatch(str(fields[k])) for k in targets)
            or not _DAY.fullmatch(str(expiration))
        ):
            return web.json_response({"message": "Redemption code is invalid"}, status=422)
        holder = state.codes.get(code.upper())
        if holder is not None and holder is not obj:
            return web.json_response({"message": "Code has already been taken"}, status=422)
        del state.codes[obj["code"].upper()]
        obj.update(code=code, nice_code=code, expiration_date=f"{expiration}T00:00:00.000-05:00")
        if targets:
            obj.update({k: fields[k] if k == targets[0] else None for k in _KINDS})
        obj["updated_at"] = state.stamp()
        state.put(obj)
        state.updated.append(obj["_id"])
        return web.json_response({"response": _answer(state, obj)})

    async def delete(request: web.Request) -> web.Response:
        state.deletes += 1
        if (answer := refused(request)) is not None:
            return answer
        obj = state.by_id.pop(request.match_info["id"], None)
        if obj is None:
            return web.json_response({"message": "Not found"}, status=404)
        del state.codes[obj["code"].upper()]
        state.deleted.append(obj["_id"])
        return web.Response(status=204)

    async def find(request: web.Request) -> web.Response:
        state.gets += 1
        if (answer := refused(request)) is not None:
            return answer
        query = request.query
        rows = list(state.by_id.values())
        if "code" in query:
            rows = [o for o in rows if o["code"].upper() == query["code"].upper()]
        rows = [o for o in rows if all(o[k] == query[k] for k in _KINDS if k in query)]
        try:
            if "created_at.gte" in query:
                low = _instant(query["created_at.gte"])
                rows = [o for o in rows if datetime.fromisoformat(o["created_at"]) >= low]
            if "created_at.lte" in query:
                high = _instant(query["created_at.lte"])
                rows = [o for o in rows if datetime.fromisoformat(o["created_at"]) <= high]
            page = int(query.get("page", 1))
            per_page = min(int(query.get("per_page", 10)), 100)
        except ValueError:
            return web.json_response({"message": "Bad filter"}, status=422)
        pages = max(1, -(-len(rows) // per_page))
        chosen = rows[(page - 1) * per_page : page * per_page]
        pagination = {
            "current": page,
            "previous": page - 1 or None,
            "next": page + 1 if page < pages else None,
            "per_page": per_page,
            "pages": pages,
        }
        return web.json_response(
            {"response": [_answer(state, o) for o in chosen], "pagination": pagination}
        )

    async def find_one(request: web.Request) -> web.Response:
        state.gets += 1
        if (answer := refused(request)) is not None:
            return answer
        obj = state.lookup(request.match_info["ref"])
        if obj is None:
            return web.json_response({"message": "Not found"}, status=404)
        return web.json_response({"response": _answer(state, obj)})

    app = web.Application()
    app.router.add_post("/redemption_codes", create)
    app.router.add_get("/redemption_codes", find)
    app.router.add_get("/redemption_codes/{ref}", find_one)
    app.router.add_put("/redemption_codes/{id}", update)
    app.router.add_delete("/redemption_codes/{id}", delete)
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
