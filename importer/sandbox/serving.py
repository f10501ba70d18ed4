"""Running a sandbox: in the background of a test or a run (:func:`running_sandbox`), or in the
foreground until stopped (:func:`serve`, the ``zype-import sandbox`` command).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from importer.sandbox.admin import ADMIN_PREFIX
from importer.sandbox.app import create_app, sandbox_state
from importer.sandbox.faults import Faults
from importer.sandbox.state import SandboxState


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: its base URL (no trailing slash) and its live state."""

    url: str
    state: SandboxState


@contextlib.asynccontextmanager
async def running_sandbox(
    api_key: str,
    faults: Faults = Faults(),
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    others: int = 0,
    state: SandboxState | None = None,
) -> AsyncIterator[Sandbox]:
    """Serve a sandbox on `host`:`port` (0: a free port) for the duration of the block.

    `others` codes of other people are seeded first (:meth:`SandboxState.seed_others`); `state`
    may be given to share it or set its clock. Yields a :class:`Sandbox` with the real URL; on
    exit the server is shut down and every open connection closed.
    """
    app = create_app(api_key, faults, state)
    if others:
        sandbox_state(app).seed_others(others)
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
    api_key: str,
    faults: Faults = Faults(),
    host: str = "127.0.0.1",
    port: int = 8808,
    *,
    others: int = 0,
) -> None:
    """Serve a sandbox until Ctrl-C or SIGTERM (blocking), after printing where it listens.

    `others`: how many codes of other people it holds from the start. The first line printed is
    ``sandbox listening on URL (api key: KEY)``; the second names the admin endpoints.
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with running_sandbox(api_key, faults, host, port, others=others) as sandbox:
            print(f"sandbox listening on {sandbox.url} (api key: {api_key})", flush=True)
            print(
                f"as the admin or a customer (same key): POST {sandbox.url}{ADMIN_PREFIX}"
                "{redeem,delete,change}/ID_OR_CODE, "
                f"POST {sandbox.url}{ADMIN_PREFIX}others?count=N, "
                f"GET {sandbox.url}{ADMIN_PREFIX}stats",
                flush=True,
            )
            await stop.wait()

    # asyncio.run turns Ctrl-C into a cancellation of main(), so the server is cleaned up first.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
