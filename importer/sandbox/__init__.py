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

Importing this package loads ``aiohttp.web``; :mod:`importer.faults` names the faults without it.

Simplifications: lists ignore ``order`` and ``sort``; the account's time zone is a fixed UTC-5
(no daylight saving); timestamps carry milliseconds and filters compare to the millisecond; the
API deletes a redeemed code like any other (refusing that is the client's job).
"""

from __future__ import annotations

from importer.faults import Faults
from importer.sandbox.admin import ADMIN_PREFIX
from importer.sandbox.app import READ_ONLY_KEY, create_app, sandbox_state
from importer.sandbox.listing import select
from importer.sandbox.objects import MISSING_ID, parse_instant, stamp
from importer.sandbox.objects import _check as _check
from importer.sandbox.objects import _content_fields as _content_fields
from importer.sandbox.objects import _new_code as _new_code
from importer.sandbox.serving import Sandbox, running_sandbox, serve
from importer.sandbox.state import SandboxState, peak_in_window

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
