"""The one boundary with aiohttp: requests out, :class:`Answer` or project errors back.

Every aiohttp exception is caught here and turned into a
:class:`~importer.errors.TransportError` (or, for a URL aiohttp cannot use at all,
:class:`~importer.errors.ApiUnavailableError`) whose text has been through
:func:`~importer.errors.redact`, raised ``from None`` so no traceback carries the original (whose
``str()`` and ``repr()`` hold the full URL, key included).

``maybe_sent`` is False only when the connection was never made (the request cannot have reached
the API); any failure after that may have delivered it, so the code is looked up before it is
sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
import orjson
from yarl import URL

from importer.api.wire import COLLECTION, Answer, Request
from importer.config import ApiConfig
from importer.errors import (
    MIN_SECRET_LENGTH,
    ApiUnavailableError,
    TransportError,
    names_a_key,
    redact,
    secret_forms,
)


class Sender(Protocol):
    """What the request engine needs; tests pass fakes."""

    async def send(self, request: Request) -> Answer:
        """Make *request* against the API's redemption-code collection."""
        ...


def open_session(config: ApiConfig, concurrency: int) -> aiohttp.ClientSession:
    """A session with bounded timeouts (aiohttp's default is 300 s) and a connection per worker."""
    timeout = aiohttp.ClientTimeout(total=config.total_timeout, sock_connect=config.connect_timeout)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    session = aiohttp.ClientSession(timeout=timeout, connector=connector, raise_for_status=False)
    # aiohttp silently re-sends a GET once when a kept-alive connection turns out dead. That
    # second request would bypass the rate limiter; every request must take its own slot.
    # (aiohttp's own test client switches it off the same way; there is no public switch.)
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


_LABELS: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ConnectionTimeoutError, "timed out connecting"),
    (aiohttp.ClientConnectorError, "cannot connect"),
    (asyncio.TimeoutError, "timed out"),
    (aiohttp.ServerDisconnectedError, "server closed the connection"),
    (aiohttp.ClientPayloadError, "answer cut short"),
    (aiohttp.ClientOSError, "connection error"),
)


class HttpSender:
    """Talks to the API over an aiohttp session; the key goes as a query parameter or header.

    Its ``repr`` and every message it makes hold no secret.
    """

    def __init__(self, session: aiohttp.ClientSession, config: ApiConfig, api_key: str) -> None:
        self._session = session
        self._url = config.url.rstrip("/") + COLLECTION
        # The key as it may appear in an error's text: raw, or percent-encoded in a URL.
        self._secrets = secret_forms(api_key)
        if config.key_in == "header":
            self._params: dict[str, str] = {}
            self._headers = {"x-zype-key": api_key}
        else:
            self._params = {"api_key": api_key}
            self._headers = {}
        self._body_headers = {**self._headers, "Content-Type": "application/json"}
        # The POST's URL, query included, built once: aiohttp merging `params` into the URL on
        # every request stood out in the profile beside aiohttp's own work.
        # A URL yarl cannot parse is left to aiohttp, which reports it on the first request.
        self._post_url: str | URL = self._url
        self._post_params: dict[str, str] | None = self._params
        with contextlib.suppress(ValueError):
            self._post_url = URL(self._url).extend_query(self._params)
            self._post_params = None

    def __repr__(self) -> str:
        return f"HttpSender({redact(self._url, self._secrets)!r})"

    async def send(self, request: Request) -> Answer:
        """Make *request*; never follows redirects (a 301/302 would turn a write into a GET)."""
        headers = self._headers if request.body is None else self._body_headers
        if request.method == "POST" and not request.path and not request.params:
            return await self._request(
                "POST", self._post_params, headers, request.body, self._post_url
            )
        params = {**dict(request.params), **self._params}
        return await self._request(
            request.method, params, headers, request.body, self._url + request.path
        )

    async def _request(
        self,
        method: str,
        params: dict[str, str] | None,
        headers: dict[str, str],
        body: bytes | None,
        url: str | URL,
    ) -> Answer:
        answered = False
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                headers=headers,
                data=body,
                allow_redirects=False,
            ) as response:
                answered = True
                raw = await response.read()
                return Answer(
                    response.status,
                    _parse(self._scrub(raw)),
                    response.headers.get("Retry-After"),
                    _limits(response.headers),
                )
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            # Every request would fail the same way: no point in retrying.
            raise ApiUnavailableError(
                f"api.url is not a usable URL ({redact(str(exc), self._secrets)})"
            ) from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never made: the request cannot have reached the API.
            raise TransportError(self._describe(exc), maybe_sent=False) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Anything after the connection was up may have delivered the request.
            raise TransportError(self._describe(exc, answered), maybe_sent=True) from None

    def _scrub(self, raw: bytes) -> bytes:
        """Remove the key from a body: an error page may echo the URL, and messages are kept."""
        for secret in self._secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                raw = raw.replace(secret.encode(), b"***")
        if names_a_key(raw):
            raw = redact(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        return raw

    def _describe(self, exc: BaseException, answered: bool = False) -> str:
        label = next((text for kind, text in _LABELS if isinstance(exc, kind)), "network error")
        if answered:
            label = f"{label} while reading the answer"
        detail = redact(str(exc), self._secrets)
        return f"{label} ({type(exc).__name__}: {detail})" if detail else label


def _parse(raw: bytes) -> Any:
    """The body as JSON; failing that, its first 200 characters as text (an error page)."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except ValueError:
        pass
    try:
        # What orjson refuses and the standard library takes: a BOM, UTF-16, NaN.
        return json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")


def _limits(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The rate-limit headers of an answer, names in lower case (see :class:`Answer`)."""
    return tuple(
        (lower, value)
        for name, value in headers.items()
        if (lower := name.lower()).startswith(("x-ratelimit", "ratelimit"))
    )
