"""The HTTP boundary with aiohttp mocked (aioresponses): fast tables of odd answers and errors.

A mock is the right tool here: what matters is how :class:`HttpSender` turns what aiohttp hands
it into an :class:`Answer` or a project error, with the key removed. The loopback tests
(test_http.py, test_sending_loopback.py) cover real sockets, timeouts and resets.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import AsyncIterator
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from aioresponses import aioresponses

from importer.api import wire
from importer.api.http import HttpSender, open_session
from importer.api.ops import CREATE
from importer.api.wire import Answer
from importer.config import ApiConfig
from importer.errors import ApiUnavailableError, ServerError, TransportError
from tests.fakes import drive, record

KEY = "CANARY/mock+key=9f8e7d6c"
URL = "https://api.example.test"
FORMS = (KEY, quote(KEY, safe=""), quote_plus(KEY))
ANY = re.compile(r"^https://api\.example\.test/redemption_codes.*$")


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    config = ApiConfig(url=URL, total_timeout=2.0)
    async with open_session(config, 2) as session:
        yield HttpSender(session, config, KEY)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (201, "<html><body>Created</body></html>", "text/html", ServerError),  # look it up
        (201, '{"response": {}}', "application/json", ServerError),
        (200, '{"response": {"_id": "' + "a1" * 12 + '"}}', "application/json", ServerError),
        (404, "<html>Not Found</html>", "text/html", ApiUnavailableError),
        (404, "", "text/plain", ApiUnavailableError),
        (422, '{"message": "Code has already been taken"}', "application/json", "rejected"),
        (502, "<html>Bad Gateway</html>", "text/html", ServerError),
    ],
)
async def test_odd_answers_to_a_create(
    sender: HttpSender, status: int, body: str, content_type: str, expected: object
) -> None:
    with aioresponses() as mocked:
        mocked.post(ANY, status=status, body=body, content_type=content_type)
        answer = await sender.send(wire.create(record()))
    assert answer.status == status
    if expected == "rejected":
        from importer.errors import RejectedError

        with pytest.raises(RejectedError):
            drive(CREATE, record(), [answer])
    else:
        with pytest.raises(expected):  # type: ignore[call-overload]
            drive(CREATE, record(), [answer])


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ClientConnectionError(
            f"Connection refused: POST {URL}/redemption_codes?api_key={quote(KEY)}"
        ),
        aiohttp.ServerDisconnectedError(f"{URL}/redemption_codes?api_key={KEY}"),
        aiohttp.ClientPayloadError(f"cut short at {URL}?api_key={quote_plus(KEY)}"),
    ],
)
async def test_aiohttp_errors_are_translated_with_the_key_removed(
    sender: HttpSender, error: Exception
) -> None:
    with aioresponses() as mocked:
        mocked.post(ANY, exception=error)
        with pytest.raises(TransportError) as raised:
            await sender.send(wire.create(record()))
    text = "".join(traceback.format_exception(raised.value)) + repr(raised.value)
    for form in FORMS:
        assert form not in text
    assert raised.value.maybe_sent is True
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


async def test_a_key_echoed_in_an_answer_is_removed(sender: HttpSender) -> None:
    echoed = f'{{"message": "bad request to /redemption_codes?api_key={quote(KEY, safe="")}"}}'
    with aioresponses() as mocked:
        mocked.get(ANY, status=400, body=echoed, content_type="application/json")
        answer = await sender.send(wire.find("PROMO1"))
    assert isinstance(answer, Answer)
    assert all(form not in str(answer.body) for form in FORMS)


def test_the_senders_repr_holds_no_key() -> None:
    async def build() -> str:
        config = ApiConfig(url=URL)
        async with open_session(config, 1) as session:
            return repr(HttpSender(session, config, KEY))

    import asyncio

    shown = asyncio.run(build())
    assert all(form not in shown for form in FORMS)
