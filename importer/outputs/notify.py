"""Tell a webhook how a run ended: one POST, for cron.

The webhook URL is read from the environment variable named by ``notify.url_env``
(``ZYPE_NOTIFY_URL`` by default), never from the command line or a file: its path holds a token,
so it is a secret like the API key. It is never logged (a failure names only the scheme and host)
and never sent over plain ``http://`` except to loopback.

The payload is Slack-compatible: a plain ``text`` line a person reads in the channel, and the
summary's numbers under ``summary`` for anything that parses them. A run is announced when it
sent requests or did not end with exit code 0; a run with nothing to do stays quiet, so a nightly
cron line over a finished campaign does not ping anyone.

Sending never raises and never changes the run's exit code or its results: a webhook that is down,
slow or refusing costs one warning line and ``False``. It is one synchronous POST with the
standard library, made after the results are written.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from importer.config import NotifyConfig, is_loopback
from importer.errors import redact

log = logging.getLogger("importer")

#: Statuses as the text line lists them; a status not listed here follows in its own order.
_ORDER = ("created", "updated", "deleted", "invalid", "rejected", "failed", "pending")

#: What each exit code means, in the text line.
_EXIT_MEANING = {
    0: "all done",
    1: "some rows need attention",
    2: "nothing was sent",
    3: "stopped part-way; the next run finishes the job",
}


def webhook_url(config: NotifyConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The webhook URL from the environment, or ``None`` when it is unset or blank."""
    value = (os.environ if environ is None else environ).get(config.url_env, "").strip()
    return value or None


def should_notify(summary: Mapping[str, Any], exit_code: int) -> bool:
    """Whether a run is worth a notification: it failed (exit 2: nothing could be sent; 3:
    stopped part-way), or it sent requests. Every run that changed something at Zype sent
    requests, so a run that did neither had nothing to do and stays quiet, even when its sheet
    still has invalid rows (exit 1): a nightly cron line over a finished campaign pings no one."""
    if exit_code in (2, 3):
        return True
    return any(_number(summary.get(key)) > 0 for key in ("requests", "lookups"))


def message(summary: Mapping[str, Any], exit_code: int) -> dict[str, Any]:
    """The webhook's JSON body: a ``text`` line and the summary's numbers. Pure.

    ``{"text": "zype-import run promo.csv: 120 created, 3 invalid; 124 requests ... (exit 1:
    some rows need attention)", "summary": {...}}``. The file named is the summary's ``input``,
    else its ``results``.
    """
    command = str(summary.get("command") or "run")
    where = str(summary.get("input") or summary.get("results") or "")
    counts = {str(k): int(v) for k, v in (summary.get("counts") or {}).items()}
    ordered = sorted(counts, key=lambda s: (_ORDER.index(s) if s in _ORDER else len(_ORDER), s))
    shown = ", ".join(f"{counts[s]:,} {s}" for s in ordered if counts[s]) or "nothing to do"
    text = f"zype-import {command}{' ' + where if where else ''}: {shown}"
    if "requests" in summary:
        text += (
            f"; {_number(summary.get('requests')):,} requests"
            f" ({_number(summary.get('retries')):,} retries,"
            f" {_number(summary.get('throttled')):,} answered 429)"
        )
    if isinstance(summary.get("duration"), int | float):
        text += f" in {summary['duration']:.1f} s"
    if summary.get("stopped"):
        text += f"; stopped: {summary['stopped']}"
    meaning = _EXIT_MEANING.get(exit_code)
    text += f" (exit {exit_code}{': ' + meaning if meaning else ''})"
    numbers: dict[str, Any] = {
        key: value
        for key, value in summary.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    numbers.update(
        command=command,
        input=where,
        counts=counts,
        stopped=summary.get("stopped"),
        exit_code=exit_code,
    )
    return {"text": text, "summary": numbers}


def notify(url: str, payload: Mapping[str, Any], *, timeout: float, secrets: Sequence[str]) -> bool:
    """POST *payload* as JSON to *url*; ``True`` when the webhook answered 2xx.

    Never raises. On any failure (refused URL, plain ``http://`` to a host other than loopback,
    connection error, timeout, a non-2xx answer, a redirect, which is never followed) it logs ONE
    warning line naming only the URL's scheme and host, with *secrets* and the URL removed from
    the reason, and returns ``False``.
    """
    shown = "the notification webhook"
    try:
        parts = urlsplit(url)
        loopback = is_loopback(parts.hostname or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Refused("it is not an http:// or https:// URL")
        shown = f"{parts.scheme}://{parts.hostname}/***"
        if parts.scheme == "http" and not loopback:
            raise _Refused("plain http:// would expose its token on the way; use https://")
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if loopback:
            handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach our loopback
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "zype-import"},
        )
        with opener.open(request, timeout=timeout) as response:
            response.read(65_536)
        return True
    except urllib.error.HTTPError as exc:
        exc.close()
        reason = f"it answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = str(exc.reason)
    except _Refused as exc:
        reason = str(exc)
    except Exception as exc:  # a notification must never cost the run anything
        reason = f"{type(exc).__name__}: {exc}"
    log.warning("notification not sent to %s: %s", shown, redact(reason, [*_parts(url), *secrets]))
    return False


def notify_run(
    summary: Mapping[str, Any],
    exit_code: int,
    config: NotifyConfig,
    *,
    secrets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> bool:
    """The whole step for a command's end: read the URL, decide, send. ``True`` if delivered.

    Quiet (no request, no log above debug) when the variable is unset or the run had nothing
    to do. Call it after the results and summary are written, with the API key in *secrets*.
    """
    url = webhook_url(config, environ)
    if url is None:
        return False
    if not should_notify(summary, exit_code):
        log.debug("nothing to do: no notification")
        return False
    return notify(url, message(summary, exit_code), timeout=config.timeout, secrets=secrets)


class _Refused(Exception):
    """The URL is not one a secret may be sent to."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following it would re-send the body to where the server says
    (and urllib turns a redirected POST into a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _parts(url: str) -> list[str]:
    """The URL and the parts of it that may hold its token, to remove from any text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    return [url, parts.path, parts.query, parts.netloc]


def _number(value: Any) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0
