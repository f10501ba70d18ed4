"""Open a local page in headless Chromium and report what happened, for the report page tests.

No browser-automation dependency: Chromium is started with ``--remote-debugging-port=0``, its
port is read from ``DevToolsActivePort`` in a fresh profile folder, and the DevTools protocol
(CDP) is spoken over aiohttp's websocket client. One browser per :func:`render` call, in a fresh
profile, with the background services that would phone home switched off.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it). Without it the
tests that need it are skipped, unless ``ZYPE_REQUIRE_BROWSER=1`` (set by CI), then they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = Path(os.environ.get("ZYPE_CHROMIUM", "/usr/bin/chromium"))
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root in a container there is no user namespace for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's /dev/shm is often too small
    "--remote-debugging-port=0",
)
START_TIMEOUT = 30.0
PAGE_TIMEOUT = 30.0


def require_chromium() -> Path:
    """Chromium's path; skip the calling test without it, or fail when CI requires it."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"{CHROMIUM} not found: install Debian's chromium package (.ci/run does)"
    if os.environ.get("ZYPE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"ZYPE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Rendered:
    """What the page did while it loaded, and the value of the expression evaluated in it."""

    value: Any
    console: list[str] = field(default_factory=list)  # console messages of type error/warning
    exceptions: list[str] = field(default_factory=list)  # uncaught exceptions
    log: list[str] = field(default_factory=list)  # browser log entries of level error/warning
    requests: list[str] = field(default_factory=list)  # every URL the page requested

    @property
    def problems(self) -> list[str]:
        """Everything that counts as "the page did not render cleanly"."""
        return self.console + self.exceptions + self.log


def render(page: Path, expression: str) -> Rendered:
    """Load *page* (a local file) in a fresh headless Chromium, evaluate *expression* in it
    once it has loaded, and return the value with everything the page logged or requested."""
    chromium = require_chromium()
    return asyncio.run(_render(chromium, page.resolve().as_uri(), expression))


async def _render(chromium: Path, url: str, expression: str) -> Rendered:
    async with (
        _browser(chromium) as endpoint,
        aiohttp.ClientSession() as session,
        session.ws_connect(endpoint, max_msg_size=0) as ws,
    ):
        cdp = _Cdp(ws)
        target = await cdp.call("Target.createTarget", url="about:blank")
        attached = await cdp.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = attached["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            await cdp.call(f"{domain}.enable", session=page)
        mark = len(cdp.events)
        await cdp.call("Page.navigate", session=page, url=url)
        await cdp.wait_for("Page.loadEventFired", session=page, since=mark)
        result = await cdp.call(
            "Runtime.evaluate", session=page, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"the expression failed: {result['exceptionDetails']}")
        # Give late console messages and requests (after load) a moment to arrive.
        await cdp.call("Runtime.evaluate", session=page, expression="1")
        await asyncio.sleep(0.2)
        await cdp.drain()
        rendered = Rendered(result["result"].get("value"))
        _collect(cdp.events, page, rendered)
        with contextlib.suppress(Exception):
            await cdp.call("Browser.close")
        return rendered


def _collect(events: list[dict[str, Any]], page: str, rendered: Rendered) -> None:
    for event in events:
        if event.get("sessionId") != page:
            continue
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            rendered.console.append(" ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            thrown = details.get("exception", {}).get("description", "")
            rendered.exceptions.append(f"{details.get('text', '')} {thrown}".strip())
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            rendered.log.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            rendered.requests.append(params["request"]["url"])


class _Cdp:
    """Commands and their answers over one browser websocket; every event is kept."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        ident = next(self.ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_json(message)
        while True:
            answer = await self._next()
            if answer.get("id") == ident:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    async def wait_for(self, method: str, session: str, since: int) -> None:
        """Until *method* arrives for *session*, counting events from index *since* on."""
        seen = self.events[since:]
        if any(e.get("method") == method and e.get("sessionId") == session for e in seen):
            return
        while True:
            event = await self._next()
            if event.get("method") == method and event.get("sessionId") == session:
                return

    async def drain(self) -> None:
        with contextlib.suppress(TimeoutError):
            while True:
                await asyncio.wait_for(self._next(), 0.2)

    async def _next(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), PAGE_TIMEOUT)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"the browser closed its DevTools connection: {message.type}")
        data: dict[str, Any] = json.loads(message.data)
        if "method" in data:
            self.events.append(data)
        return data


@contextlib.asynccontextmanager
async def _browser(chromium: Path) -> AsyncIterator[str]:
    """A running Chromium in a fresh profile; yields its browser websocket URL."""
    profile = Path(tempfile.mkdtemp(prefix="zype-chromium-"))
    # Popen returns at once; the wait for the port below is asynchronous.
    process = subprocess.Popen(  # noqa: ASYNC220
        [str(chromium), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group: the renderer and helper processes it starts end with it.
        start_new_session=True,
    )
    try:
        yield await _endpoint(profile, process)
    finally:
        _stop(process)
        shutil.rmtree(profile, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the browser started here and its helpers (after Browser.close, usually gone)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)  # the group this module created for it
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
            return


async def _endpoint(profile: Path, process: subprocess.Popen[bytes]) -> str:
    """Chromium writes its port and browser path to DevToolsActivePort once it listens."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"chromium exited at start with code {process.returncode}")
        with contextlib.suppress(FileNotFoundError, ValueError):
            port, path = active.read_text().split()[:2]
            return f"ws://127.0.0.1:{int(port)}{path}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"chromium did not open its DevTools port in {START_TIMEOUT:.0f} s")
