"""The one boundary with aiohttp: requests out, :class:`Answer` or project errors back.

Every aiohttp exception is caught here and turned into a
:class:`~importer.errors.TransportError` whose text has been through
:func:`~importer.errors.redact`, raised ``from None`` so no traceback carries the original (whose
``str()`` and ``repr()`` hold the full URL, key included).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from importer.config import ApiConfig
from importer.errors import TransportError, redact


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, reduced to what the importer decides on."""

    status: int
    body: Any
    retry_after: str | None = None


class Sender(Protocol):
    """What :class:`~importer.submit.Submitter` needs; tests pass fakes."""

    async def create(self, payload: dict[str, Any]) -> Answer:
        """``POST /redemption_codes``."""
        ...

    async def find(self, code: str) -> Answer:
        """``GET /redemption_codes?code=...``."""
        ...


def open_session(config: ApiConfig, concurrency: int) -> aiohttp.ClientSession:
    """A session with bounded timeouts (aiohttp's default is 300 s) and a connection per worker."""
    timeout = aiohttp.ClientTimeout(total=config.total_timeout, sock_connect=config.connect_timeout)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(timeout=timeout, connector=connector, raise_for_status=False)


class HttpSender:
    """Talks to the API over an aiohttp session; the key goes as a query parameter or header."""

    def __init__(self, session: aiohttp.ClientSession, config: ApiConfig, api_key: str) -> None:
        self._session = session
        self._url = config.url.rstrip("/") + "/redemption_codes"
        self._secrets = (api_key,)
        if config.key_in == "header":
            self._params: dict[str, str] = {}
            self._headers = {"x-zype-key": api_key}
        else:
            self._params = {"api_key": api_key}
            self._headers = {}

    async def create(self, payload: dict[str, Any]) -> Answer:
        """POST one code; never follows redirects (a 301/302 would turn the POST into a GET)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {**self._headers, "Content-Type": "application/json"}
        return await self._request("POST", self._params, headers, body)

    async def find(self, code: str) -> Answer:
        """Look one code up by its exact string."""
        params = {**self._params, "code": code, "per_page": "100"}
        return await self._request("GET", params, self._headers, None)

    async def _request(
        self, method: str, params: dict[str, str], headers: dict[str, str], body: bytes | None
    ) -> Answer:
        sent = False
        try:
            async with self._session.request(
                method,
                self._url,
                params=params,
                headers=headers,
                data=body,
                allow_redirects=False,
            ) as response:
                sent = True
                raw = await response.read()
                return Answer(response.status, _parse(raw), response.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as exc:
            # The connection was never made: the request cannot have reached the API.
            raise TransportError(self._describe(exc), maybe_sent=False) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Anything after the connection was up may have delivered the request.
            raise TransportError(self._describe(exc, sent), maybe_sent=True) from None

    def _describe(self, exc: BaseException, answered: bool = False) -> str:
        kind = {
            aiohttp.ClientConnectorError: "cannot connect",
            aiohttp.ServerDisconnectedError: "server closed the connection",
            aiohttp.ClientOSError: "connection error",
            aiohttp.ClientPayloadError: "answer cut short",
        }
        label = "timed out" if isinstance(exc, asyncio.TimeoutError) else None
        if label is None:
            label = next((v for k, v in kind.items() if isinstance(exc, k)), "network error")
        if answered:
            label = f"{label} while reading the answer"
        detail = redact(str(exc), self._secrets)
        return f"{label} ({type(exc).__name__}: {detail})" if detail else label


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
