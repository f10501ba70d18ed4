"""The ``/_sandbox/`` endpoints: the account's admin and customers acting over HTTP.

They call :class:`~importer.sandbox.state.SandboxState`'s admin methods, under the reserved
prefix ``/_sandbox/`` (the sandbox key required, as for writes)::

    POST /_sandbox/redeem/{id_or_code}[?at=TIMESTAMP]   200 {"response": code}
    POST /_sandbox/delete/{id_or_code}                  200 {"response": code as it was}
    POST /_sandbox/change/{id_or_code}  body {fields}   200 {"response": code}
    POST /_sandbox/others?count=N[&seed=S][&video_id=ID...]  201 {"response": [codes]}
    GET  /_sandbox/stats                                200 {"response": {counters}}

They are not API traffic: no fault touches them and no counter or ``*_log`` counts them (they go
to ``admin_log``). An unknown code is a 404, a refused change a 422.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from importer.sandbox.answers import _NOT_FOUND, _json, _message
from importer.sandbox.objects import ENTITLEMENTS, Code, parse_instant
from importer.sandbox.state import SandboxState

#: Paths under it are the admin's and customers' doings, not API traffic.
ADMIN_PREFIX = "/_sandbox/"


def _add_admin_routes(
    app: web.Application,
    st: SandboxState,
    auth: Callable[[web.Request], web.Response | None],
    present: Callable[[Code], Code],
) -> None:
    """The ``/_sandbox/`` endpoints: the admin's and customers' doings, over HTTP."""

    def acting(
        action: Callable[[web.Request], Awaitable[Any]], status: int = 200
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            if (refused := auth(request)) is not None:
                return refused
            try:
                result = await action(request)
            except KeyError:
                return _message(404, _NOT_FOUND)
            except ValueError as exc:
                return _message(422, str(exc))
            if isinstance(result, list):
                return _json(status, {"response": [present(obj) for obj in result]})
            return _json(status, {"response": present(result)})

        return handler

    async def redeem(request: web.Request) -> Code:
        at = request.query.get("at")
        try:
            when = None if at is None else parse_instant(at)
        except ValueError:
            raise ValueError(f"at must be a date or an ISO 8601 timestamp, got {at!r}") from None
        return st.redeem(request.match_info["id_or_code"], when)

    async def delete(request: web.Request) -> Code:
        return st.admin_delete(request.match_info["id_or_code"])

    async def change(request: web.Request) -> Code:
        try:
            fields = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise ValueError("Request body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise ValueError("send a JSON object of the fields to change")
        return st.admin_change(request.match_info["id_or_code"], **fields)

    async def others(request: web.Request) -> list[Code]:
        query = request.query
        try:
            count = int(query.get("count", "1"))
            seed = int(query["seed"]) if "seed" in query else None
        except ValueError:
            raise ValueError("count and seed must be whole numbers") from None
        pairs = [(name, value) for name, value in query.items() if name in ENTITLEMENTS]
        return st.seed_others(count, entitlements=pairs, seed=seed)

    async def stats(request: web.Request) -> dict[str, int]:
        return {
            "codes": len(st.codes),
            "requests": st.requests,
            "posts": st.posts,
            "gets": st.gets,
            "puts": st.puts,
            "deletes": st.deletes,
            "rejected_429": st.rejected_429,
            "faults_injected": st.faults_injected,
            "created": len(st.created_log),
            "updated": len(st.updated_log),
            "deleted": len(st.deleted_log),
        }

    app.router.add_post(f"{ADMIN_PREFIX}redeem/{{id_or_code}}", acting(redeem))
    app.router.add_post(f"{ADMIN_PREFIX}delete/{{id_or_code}}", acting(delete))
    app.router.add_post(f"{ADMIN_PREFIX}change/{{id_or_code}}", acting(change))
    app.router.add_post(f"{ADMIN_PREFIX}others", acting(others, status=201))
    app.router.add_get(f"{ADMIN_PREFIX}stats", acting(stats))
