"""The sandbox's aiohttp app: the API's routes, the key check and the faults in front of them.

It answers the calls the importer makes, the way ``api/NOTES.md`` says Zype answers them, on a
loopback port: ``POST /redemption_codes``, ``GET /redemption_codes`` (filters and pagination:
:mod:`importer.sandbox.listing`), ``GET /redemption_codes/{id_or_code}``, ``PUT`` and
``DELETE /redemption_codes/{id}`` (by ``_id`` only, as documented: a code string there is a
404). Everything else is a 404. Every answer is JSON; every error body is ``{"message": ...}``.

Authentication: the key comes from the ``api_key`` query parameter or the ``x-zype-key`` header
and must equal the sandbox's key (else 401). :data:`READ_ONLY_KEY` is also accepted, for reading
only: a write with it is a 403.

:class:`Faults` makes it misbehave the way a real API and the proxies in front of it do. They are
applied to every API request, in this order, so each fault is unambiguous about whether the
request took effect:

=========================  =====================================================  ===========
fault                      on the wire (what an aiohttp client sees)               applied?
=========================  =====================================================  ===========
``reset_rate``             TCP RST before any answer: ``aiohttp.ClientOSError``    no
                           (``ECONNRESET``), or ``ServerDisconnectedError``
``rate_limit``             429 ``{"message": "Rate limit exceeded"}``,             no
                           ``Retry-After: 1``
``latency``                the answer comes that many seconds later                (yes)
``error_rate``             503 ``{"message": "Service Unavailable"}``              no
``lost_rate`` (POST, PUT,  handled as usual, then FIN with no answer:              **yes**
DELETE)                    ``aiohttp.ServerDisconnectedError``
=========================  =====================================================  ===========

Faults come before the key is checked (they stand for the network and the proxies in front of
the API), so a request with a wrong key can still be reset, limited or answered 503.
``Faults.old_flag_names`` is no fault but Zype's older dialect: every code object in an answer
spells its flags ``available?``, ``redeemed?``, ``expired?``.

The rate limit is a sliding one-second window over every request that got past it (GETs
included): a request is refused when ``floor(rate_limit)`` requests were admitted in the last
second. Refused requests do not count, so a client that honours ``Retry-After`` gets through.

The handler is kept lean (no logging, constant work per create) because the importer's
benchmarks drive it at about 10,000 requests per second.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from importer.sandbox.admin import ADMIN_PREFIX, _add_admin_routes
from importer.sandbox.answers import (
    _NOT_FOUND,
    _drop_connection,
    _json,
    _message,
    _old_spelling,
    _read_fields,
    _same,
)
from importer.sandbox.faults import Faults
from importer.sandbox.listing import page_of
from importer.sandbox.objects import _check, _new_code, _refresh
from importer.sandbox.state import SandboxState

#: A key that may read but not write, as a Zype "Read Only" key would.
READ_ONLY_KEY = "read-only"

_WRITES = frozenset({"POST", "PUT", "DELETE"})

_STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state", SandboxState)


def sandbox_state(app: web.Application) -> SandboxState:
    """The state of an app made by :func:`create_app`."""
    return app[_STATE]


class RateWindow:
    """The sandbox's rate limit: requests in any sliding one-second window, refused ones too.

    As strict as an API that counts every request it sees: a client that keeps sending past
    the limit keeps being refused, so backing off is the only way through. The limit may change
    once, ``rate_change_at`` seconds after the first request (``rate_limit_to``).
    """

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self.limited = faults.rate_limit is not None
        self._window: collections.deque[float] = collections.deque()
        self._start: float | None = None
        self._retry_after = {} if faults.no_retry_after else {"Retry-After": "1"}

    def limit(self, now: float) -> int:
        """The limit in force at *now*."""
        faults = self._faults
        assert faults.rate_limit is not None
        if self._start is None:
            self._start = now
        if faults.rate_limit_to is not None and now - self._start >= faults.rate_change_at:
            return math.floor(faults.rate_limit_to)
        return math.floor(faults.rate_limit)

    def arrive(self, now: float) -> tuple[dict[str, str] | None, dict[str, str]]:
        """Count a request: the 429's headers if it is refused (else None), and the headers
        that state the limit (empty unless ``rate_headers``)."""
        limit = self.limit(now)
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        refused = len(window) >= limit
        window.append(now)
        stated: dict[str, str] = {}
        if self._faults.rate_headers:
            reset = max(window[0] + 1.0 - now, 0.0)
            stated = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(max(limit - len(window), 0)),
                "X-RateLimit-Reset": str(math.ceil(reset)),
            }
        if refused:
            return {**self._retry_after, **stated}, stated
        return None, stated


def create_app(
    api_key: str, faults: Faults = Faults(), state: SandboxState | None = None
) -> web.Application:
    """An aiohttp app imitating the API for `api_key`, misbehaving per `faults`.

    `state` may be passed to share or pre-inspect it (or to set its clock); otherwise a fresh
    one is made. Either way :func:`sandbox_state` returns it.
    """
    st = state if state is not None else SandboxState()
    rng = random.Random(faults.seed)
    limiting = RateWindow(faults)
    present = _old_spelling if faults.old_flag_names else _same

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
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        now = time.monotonic()
        method = request.method
        st.requests += 1
        if method == "POST":
            st.posts += 1
        elif method == "GET":
            st.gets += 1
        elif method == "PUT":
            st.puts += 1
        elif method == "DELETE":
            st.deletes += 1
        st.per_second[int(now)] += 1
        st.arrivals.append(now)

        if faults.reset_rate and rng.random() < faults.reset_rate:
            st.faults_injected += 1
            return _drop_connection(request, rst=True)

        stated: dict[str, str] = {}
        if limiting.limited:
            refused, stated = limiting.arrive(now)
            if refused is not None:
                st.rejected_429 += 1
                return _message(429, "Rate limit exceeded", refused)
        st.admitted.append(now)

        if faults.latency:
            # Sleeping here, not blocking, lets many slow requests overlap like a real server.
            await asyncio.sleep(faults.latency)

        if faults.error_rate and rng.random() < faults.error_rate:
            st.faults_injected += 1
            return _message(503, "Service Unavailable")

        response = await handler(request)
        response.headers.update(stated)

        if faults.lost_rate and method in _WRITES and rng.random() < faults.lost_rate:
            # The request took effect; only the answer is lost. This is the case that forces
            # the client to look the code up (or the code's state) before sending it again.
            st.faults_injected += 1
            return _drop_connection(request, rst=False)
        return response

    async def create(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        fields = await _read_fields(request)
        if isinstance(fields, web.Response):
            return fields
        problem, content = _check(fields)
        if content is None:
            return _message(422, problem)
        if st.find_code(content.code) is not None:
            return _message(422, "Code has already been taken")
        obj = _new_code(content, secrets.token_hex(12), st.site_id, st.now())
        st.add(obj)
        return _json(201, {"response": present(obj)})

    async def list_codes(request: web.Request) -> web.Response:
        if (refused := auth(request, write=False)) is not None:
            return refused
        try:
            shown, pagination = page_of(st, request.query)
        except ValueError as exc:
            return _message(422, str(exc))
        today = st.today()
        for obj in shown:
            _refresh(obj, today)
        return _json(200, {"response": [present(obj) for obj in shown], "pagination": pagination})

    async def get_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=False)) is not None:
            return refused
        obj = st.find(request.match_info["id_or_code"])
        if obj is None:
            return _message(404, _NOT_FOUND)
        _refresh(obj, st.today())
        return _json(200, {"response": present(obj)})

    async def update_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        obj = st.find_id(request.match_info["id"])
        if obj is None:
            return _message(404, _NOT_FOUND)
        fields = await _read_fields(request)
        if isinstance(fields, web.Response):
            return fields
        if problem := st.edit(obj, fields):
            return _message(422, problem)
        st.updated_log.append(obj["_id"])
        return _json(200, {"response": present(obj)})

    async def delete_one(request: web.Request) -> web.Response:
        if (refused := auth(request, write=True)) is not None:
            return refused
        obj = st.find_id(request.match_info["id"])
        if obj is None:
            return _message(404, _NOT_FOUND)
        st.remove(obj)
        st.deleted_log.append(obj["_id"])
        return web.Response(status=204)

    async def not_found(request: web.Request) -> web.Response:
        return _message(404, "Not found")

    app = web.Application(middlewares=[faults_middleware])
    app[_STATE] = st
    app.router.add_post("/redemption_codes", create)
    app.router.add_get("/redemption_codes", list_codes)
    app.router.add_get("/redemption_codes/{id_or_code}", get_one)
    app.router.add_put("/redemption_codes/{id}", update_one)
    app.router.add_delete("/redemption_codes/{id}", delete_one)
    _add_admin_routes(app, st, lambda request: auth(request, write=True), present)
    # Registered last: the router only falls through to it when nothing above matches.
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
