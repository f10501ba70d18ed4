"""A local imitation of Zype's redemption-code API, with faults on demand.

It answers the calls the importer makes, the way ``api/NOTES.md`` says Zype answers them, on a
loopback port: ``POST /redemption_codes``, ``GET /redemption_codes`` (filters and pagination),
``GET`` and ``DELETE /redemption_codes/{id_or_code}``. Everything else is a 404. Every answer is
JSON; every error body is ``{"message": ...}``.

Authentication: the key comes from the ``api_key`` query parameter or the ``x-zype-key`` header
and must equal the sandbox's key (else 401). :data:`READ_ONLY_KEY` is also accepted, for reading
only: a write with it is a 403.

:class:`Faults` makes it misbehave the way a real API and the proxies in front of it do. They are
applied to every request, in this order, so each fault is unambiguous about whether the request
took effect:

======================  ========================================================  ===========
fault                   on the wire (what an aiohttp client sees)                  applied?
======================  ========================================================  ===========
``reset_rate``          TCP RST before any answer: ``aiohttp.ClientOSError``       no
                        (``ECONNRESET``), or ``ServerDisconnectedError``
``rate_limit``          429 ``{"message": "Rate limit exceeded"}``,                no
                        ``Retry-After: 1``
``latency``             the answer comes that many seconds later                   (yes)
``error_rate``          503 ``{"message": "Service Unavailable"}``                 no
``lost_rate`` (POST)    handled as usual, then FIN with no answer:                 **yes**
                        ``aiohttp.ServerDisconnectedError``
======================  ========================================================  ===========

Faults come before the key is checked (they stand for the network and the proxies in front of
the API), so a request with a wrong key can still be reset, limited or answered 503.

The rate limit is a sliding one-second window over every request that got past it (GETs
included): a request is refused when ``floor(rate_limit)`` requests were admitted in the last
second. Refused requests do not count, so a client that honours ``Retry-After`` gets through.

:class:`SandboxState` holds the codes and counters so tests can inspect what the server saw.
Codes are unique case-insensitively, so a double create is impossible by construction;
``created_log`` lets a test prove that no code was ever created twice.

Simplifications: lists come in creation order and ignore ``created_at.*``, ``order`` and
``sort``; the account's time zone is a fixed UTC-5 (no daylight saving); ``per_page`` above 100
is cut to 100.

The handler is kept lean (no logging, constant work per request) because the importer's
benchmarks drive it at about 10,000 requests per second.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import random
import re
import secrets
import signal
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from importer.faults import Faults

__all__ = [
    "READ_ONLY_KEY",
    "Faults",
    "Sandbox",
    "SandboxState",
    "create_app",
    "peak_in_window",
    "running_sandbox",
    "sandbox_state",
    "serve",
]

#: A key that may read but not write, as a Zype "Read Only" key would.
READ_ONLY_KEY = "read-only"

#: Zype answers timestamps in the account's time zone; the sandbox's account is fixed at UTC-5.
ACCOUNT_TZ = timezone(timedelta(hours=-5))
ACCOUNT_OFFSET = "-05:00"

#: The entitlement fields, with the names Zype uses for them in messages and ``content_type``.
ENTITLEMENTS: dict[str, tuple[str, str]] = {
    "video_id": ("Video", "Video"),
    "playlist_id": ("Playlist", "Playlist"),
    "plan_id": ("Plan", "Plan"),
    "pass_plan_id": ("Pass plan", "PassPlan"),
}

#: An entitlement id that is well formed but names nothing, to exercise "not found".
MISSING_ID = "0" * 24

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_YMD = re.compile(r"\d{4}-\d{2}-\d{2}")
#: SO_LINGER on, timeout 0: closing the socket sends RST instead of FIN.
_LINGER_RST = struct.pack("ii", 1, 0)


@dataclass
class SandboxState:
    """What the server holds and has seen. Tests read it; only the server should write it.

    ``codes`` maps each code, exactly as created, to its code object. ``per_second`` counts
    requests by ``int(time.monotonic())`` second of arrival (429s and injected faults included);
    ``arrivals`` and ``admitted`` are the monotonic arrival times of every request and of those
    the rate limiter let through, for :func:`peak_in_window`. ``faults_injected`` counts resets,
    503s and lost answers (429s are in ``rejected_429``).
    """

    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    posts: int = 0
    gets: int = 0
    rejected_429: int = 0
    faults_injected: int = 0
    per_second: collections.Counter[int] = field(default_factory=collections.Counter)
    created_log: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    admitted: list[float] = field(default_factory=list)
    # Indexes that keep lookups O(1) at benchmark rates: lower-cased code -> code, _id -> code.
    _by_folded: dict[str, str] = field(default_factory=dict, repr=False)
    _by_id: dict[str, str] = field(default_factory=dict, repr=False)

    def find(self, id_or_code: str) -> dict[str, Any] | None:
        """The code object with this ``_id``, or with this code (case-insensitive), or None."""
        code = self._by_id.get(id_or_code) or self._by_folded.get(id_or_code.casefold())
        return None if code is None else self.codes[code]

    def find_code(self, code: str) -> dict[str, Any] | None:
        """The code object whose code equals `code` case-insensitively, or None."""
        exact = self._by_folded.get(code.casefold())
        return None if exact is None else self.codes[exact]

    def add(self, obj: dict[str, Any]) -> None:
        """Store a new code object; ValueError if its code is taken (in any case)."""
        folded = obj["code"].casefold()
        if folded in self._by_folded:
            raise ValueError(f"code {obj['code']!r} already exists")
        self.codes[obj["code"]] = obj
        self._by_folded[folded] = obj["code"]
        self._by_id[obj["_id"]] = obj["code"]
        self.created_log.append(obj["code"])

    def remove(self, obj: dict[str, Any]) -> None:
        """Forget a stored code object (``created_log`` keeps its history)."""
        del self.codes[obj["code"]]
        del self._by_folded[obj["code"].casefold()]
        del self._by_id[obj["_id"]]


def peak_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most of `times` (sorted ascending) that fall in any half-open `window`-second span."""
    best = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: its base URL (no trailing slash) and its live state."""

    url: str
    state: SandboxState


_STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state", SandboxState)


def sandbox_state(app: web.Application) -> SandboxState:
    """The state of an app made by :func:`create_app`."""
    return app[_STATE]


# --- answers -----------------------------------------------------------------------------------


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"message": message}, headers)


def _drop_connection(request: web.Request, *, rst: bool) -> web.Response:
    """Close the client's connection with no answer: RST if `rst`, else an orderly FIN.

    The returned response is never delivered: aiohttp fails to write it to the closed transport
    and ends the connection quietly (a debug log, no error), which is exactly what we want.
    """
    transport = request.transport
    if transport is not None:
        if rst:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            transport.abort()
        else:
            transport.close()
    return web.Response(status=204)


# --- the app -------------------------------------------------------------------------------------


def create_app(
    api_key: str, faults: Faults = Faults(), state: SandboxState | None = None
) -> web.Application:
    """An aiohttp app imitating the API for `api_key`, misbehaving per `faults`.

    `state` may be passed to share or pre-inspect it; otherwise a fresh one is made. Either way
    :func:`sandbox_state` returns it.
    """
    st = state if state is not None else SandboxState()
    rng = random.Random(faults.seed)
    site_id = secrets.token_hex(12)
    limit = math.floor(faults.rate_limit) if faults.rate_limit is not None else 0
    window: collections.deque[float] = collections.deque()
    # The 429 headers are the same every time; build them once.
    retry_after = {"Retry-After": "1"}

    def auth(request: web.Request, write: bool) -> web.Response | None:
        keys = (request.query.get("api_key"), request.headers.get("x-zype-key"))
        if api_key in keys:
            return None
        if READ_ONLY_KEY in keys:
            return _message(403, "Forbidden") if write else None
        return _message(401, "Invalid or missing API key")

    @web.middleware
    async def faults_middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        now = time.monotonic()
        st.requests += 1
        if request.method == "POST":
            st.posts += 1
        elif request.method == "GET":
            st.gets += 1
        st.per_second[int(now)] += 1
        st.arrivals.append(now)

        if faults.reset_rate and rng.random() < faults.reset_rate:
            st.faults_injected += 1
            return _drop_connection(request, rst=True)

        if limit:
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                st.rejected_429 += 1
                return _message(429, "Rate limit exceeded", retry_after)
            window.append(now)
        st.admitted.append(now)

        if faults.latency:
            # Sleeping here, not blocking, lets many slow requests overlap like a real server.
            await asyncio.sleep(faults.latency)

        if faults.error_rate and rng.random() < faults.error_rate:
            st.faults_injected += 1
            return _message(503, "Service Unavailable")

        response = await handler(request)

        if request.method == "POST" and faults.lost_rate and rng.random() < faults.lost_rate:
            # The request took effect; only the answer is lost. This is the case that forces
            # the client to look the code up before sending it again.
            st.faults_injected += 1
            return _drop_connection(request, rst=False)
        return response

    async def create(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _message(422, "Request body is not valid JSON")
        fields = body.get("redemption_code") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return _message(422, 'Redemption code is missing: send {"redemption_code": {...}}')
        problem, obj = _build_code(fields, site_id)
        if obj is None:
            return _message(422, problem)
        if st.find_code(obj["code"]) is not None:
            return _message(422, "Code has already been taken")
        st.add(obj)
        return _json(201, {"response": obj})

    async def list_codes(request: web.Request) -> web.Response:
        if (refused := auth(request, write=False)) is not None:
            return refused
        query = request.query
        try:
            page = int(query.get("page", "1"))
            per_page = min(int(query.get("per_page", str(DEFAULT_PER_PAGE))), MAX_PER_PAGE)
        except ValueError:
            return _message(422, "page and per_page must be whole numbers")
        if page < 1 or per_page < 1:
            return _message(422, "page and per_page must be at least 1")
        filters = [(name, query[name]) for name in ENTITLEMENTS if name in query]
        if "code" in query:
            found = st.find_code(query["code"])
            candidates: list[dict[str, Any]] = [] if found is None else [found]
        else:
            candidates = list(st.codes.values())
        matches = [c for c in candidates if all(c[name] == value for name, value in filters)]
        pages = math.ceil(len(matches) / per_page)
        start = (page - 1) * per_page
        pagination = {
            "current": page,
            "previous": page - 1 if page > 1 else None,
            "next": page + 1 if page < pages else None,
            "per_page": per_page,
            "pages": pages,
        }
        return _json(200, {"response": matches[start : start + per_page], "pagination": pagination})

    async def get_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=False)) is not None:
            return refused
        obj = st.find(request.match_info["id_or_code"])
        if obj is None:
            return _message(404, "Redemption code not found")
        return _json(200, {"response": obj})

    async def delete_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        obj = st.find(request.match_info["id_or_code"])
        if obj is None:
            return _message(404, "Redemption code not found")
        st.remove(obj)
        return web.Response(status=204)

    async def not_found(request: web.Request) -> web.Response:
        return _message(404, "Not found")

    app = web.Application(middlewares=[faults_middleware])
    app[_STATE] = st
    app.router.add_post("/redemption_codes", create)
    app.router.add_get("/redemption_codes", list_codes)
    app.router.add_get("/redemption_codes/{id_or_code}", get_one)
    app.router.add_delete("/redemption_codes/{id_or_code}", delete_one)
    # Registered last: the router only falls through to it when nothing above matches.
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def _build_code(fields: dict[str, Any], site_id: str) -> tuple[str, dict[str, Any] | None]:
    """Validate a ``redemption_code`` body: ``("", code object)`` or ``(message, None)``."""
    code = fields.get("code")
    if not isinstance(code, str) or not code.strip():
        return "Code can't be blank", None
    expiration = fields.get("expiration_date")
    if not isinstance(expiration, str) or not expiration:
        return "Expiration date can't be blank", None
    try:
        # The regex first: fromisoformat alone also takes 20300115 and 2030-W03-2.
        expires = date.fromisoformat(expiration) if _YMD.fullmatch(expiration) else None
    except ValueError:
        expires = None
    if expires is None:
        return "Expiration date is invalid (expected YYYY-MM-DD)", None
    # Rails treats "" like a missing value, so an empty id is no entitlement at all.
    given = [name for name in ENTITLEMENTS if fields.get(name) not in (None, "")]
    if not given:
        return "Video, playlist, plan or pass plan can't be blank", None
    if len(given) > 1:
        return "Only one of video, playlist, plan or pass plan may be given", None
    name = given[0]
    label, content_type = ENTITLEMENTS[name]
    target = fields[name]
    if not isinstance(target, str) or not _HEX24.fullmatch(target):
        return f"{label} id is invalid", None
    if target == MISSING_ID:
        return f"{label} not found", None

    now = datetime.now(ACCOUNT_TZ)
    expired = expires < now.date()
    stamp = now.isoformat(timespec="milliseconds")
    obj: dict[str, Any] = {
        "_id": secrets.token_hex(12),
        "code": code,
        "nice_code": "-".join(code[i : i + 4] for i in range(0, len(code), 4)),
        "content_title": f"Sandbox {label.lower()} {target[-6:]}",
        "content_type": content_type,
        # Midnight at the start of that day in the account's zone, as Zype answers it.
        "expiration_date": f"{expiration}T00:00:00.000{ACCOUNT_OFFSET}",
        **{other: target if other == name else None for other in ENTITLEMENTS},
        "transaction_id": None,
        "redeemed_at": None,
        "site_id": site_id,
        "created_at": stamp,
        "updated_at": stamp,
        "available": not expired,
        "redeemed": False,
        "expired": expired,
    }
    return "", obj


# --- running it ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_sandbox(
    api_key: str, faults: Faults = Faults(), host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Sandbox]:
    """Serve a sandbox on `host`:`port` (0: a free port) for the duration of the block.

    Yields a :class:`Sandbox` with the real URL; on exit the server is shut down and every open
    connection closed.
    """
    app = create_app(api_key, faults)
    # No access log: one log line per request would cost more than answering it.
    # A short shutdown timeout: a test leaving with a slow (latency) request still in flight
    # should not wait a minute.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        # A long backlog: tests and benchmarks open many connections at the same instant.
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield Sandbox(url=f"http://{url_host}:{bound_port}", state=sandbox_state(app))
    finally:
        await runner.cleanup()


def serve(
    api_key: str, faults: Faults = Faults(), host: str = "127.0.0.1", port: int = 8808
) -> None:
    """Serve a sandbox until Ctrl-C or SIGTERM (blocking), after printing where it listens."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with running_sandbox(api_key, faults, host, port) as sandbox:
            print(f"sandbox listening on {sandbox.url} (api key: {api_key})", flush=True)
            await stop.wait()

    # asyncio.run turns Ctrl-C into a cancellation of main(), so the server is cleaned up first.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
