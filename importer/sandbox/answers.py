"""How the sandbox answers: JSON bodies, ``{"message": ...}`` errors, connections dropped
without an answer, and the flags spelt the old way.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from aiohttp import web

from importer.sandbox.objects import Code

#: The flags as Zype's older answers spell them.
OLD_FLAG_NAMES = {"available": "available?", "redeemed": "redeemed?", "expired": "expired?"}

#: SO_LINGER on, timeout 0: closing the socket sends RST instead of FIN.
_LINGER_RST = struct.pack("ii", 1, 0)


def _old_spelling(obj: Code) -> Code:
    return {OLD_FLAG_NAMES.get(key, key): value for key, value in obj.items()}


def _same(obj: Code) -> Code:
    return obj


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"message": message}, headers)


_NOT_FOUND = "Redemption code not found"


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


async def _read_fields(request: web.Request) -> dict[str, Any] | web.Response:
    """The ``redemption_code`` object of a create or update body, or the 422 refusing it."""
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _message(422, "Request body is not valid JSON")
    fields = body.get("redemption_code") if isinstance(body, dict) else None
    if not isinstance(fields, dict):
        return _message(422, 'Redemption code is missing: send {"redemption_code": {...}}')
    return fields
