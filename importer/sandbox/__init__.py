"""A local imitation of Zype's redemption-code API, with faults on demand.

Its parts, in the order a request meets them:

- :mod:`~importer.sandbox.app`: the aiohttp app, the key check and the faults (the table of what
  each fault looks like on the wire);
- :mod:`~importer.sandbox.listing`: the filters and pages of ``GET /redemption_codes``;
- :mod:`~importer.sandbox.objects`: the code objects, how a create or an update is checked, and
  their timestamps;
- :mod:`~importer.sandbox.state`: :class:`SandboxState`, what the server holds and has seen, and
  what the account's admin and customers do to it;
- :mod:`~importer.sandbox.admin`: the same admin doings over HTTP, under ``/_sandbox/``;
- :mod:`~importer.sandbox.answers`: JSON answers and dropped connections;
- :mod:`~importer.sandbox.serving`: :func:`running_sandbox` for tests and runs, :func:`serve` for
  the ``zype-import sandbox`` command.

- :mod:`~importer.sandbox.faults`: :class:`Faults`, how it misbehaves; the importer's own options
  name them, so importing it loads nothing of the server.

The names below load ``aiohttp.web`` on first use only (:func:`__getattr__`), so the command
line and the run context can name :class:`Faults` without loading a server they may never run.

Simplifications: lists ignore ``order`` and ``sort``; the account's time zone is a fixed UTC-5
(no daylight saving); timestamps carry milliseconds and filters compare to the millisecond; the
API deletes a redeemed code like any other (refusing that is the client's job).
"""

from __future__ import annotations

import importlib
from typing import Any

from importer.sandbox.faults import Faults

#: Where each name of the package's face lives.
_FACE = {
    "ADMIN_PREFIX": "admin",
    "READ_ONLY_KEY": "app",
    "create_app": "app",
    "sandbox_state": "app",
    "select": "listing",
    "MISSING_ID": "objects",
    "parse_instant": "objects",
    "stamp": "objects",
    "_check": "objects",
    "_content_fields": "objects",
    "_new_code": "objects",
    "Sandbox": "serving",
    "running_sandbox": "serving",
    "serve": "serving",
    "SandboxState": "state",
    "peak_in_window": "state",
}

__all__ = [
    "ADMIN_PREFIX",
    "MISSING_ID",
    "READ_ONLY_KEY",
    "Faults",
    "Sandbox",
    "SandboxState",
    "create_app",
    "parse_instant",
    "peak_in_window",
    "running_sandbox",
    "sandbox_state",
    "select",
    "serve",
    "stamp",
]


def __getattr__(name: str) -> Any:
    """Load the part of the sandbox that holds *name* (and with it ``aiohttp.web``) on use."""
    module = _FACE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
