"""The API's wire format: requests built, answers classified, code objects read."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from importer.api import wire
from importer.api.wire import Answer, Request
from importer.errors import (
    ApiUnavailableError,
    AuthError,
    RateLimitedError,
    RejectedError,
    ServerError,
)
from tests.fakes import ID, VIDEO, message, record

POST = Request("POST")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (message(401, "Invalid or missing API key"), AuthError),
        (message(403, "Forbidden"), AuthError),
        (Answer(403, "<html>denied</html>"), AuthError),  # the key first, whatever the body
        (message(429, "slow", "3"), RateLimitedError),
        (Answer(429, "<html>slow</html>"), RateLimitedError),
        (message(500, "boom"), ServerError),
        (Answer(502, "<html>Bad gateway</html>"), ServerError),
        (Answer(301, None), ApiUnavailableError),
        (message(404, "Video not found"), RejectedError),
        (message(422, "Code has already been taken"), RejectedError),
        (Answer(404, "<html>Not Found</html>"), ApiUnavailableError),
        (Answer(404, None), ApiUnavailableError),
        (Answer(404, {"error": "no route"}), ApiUnavailableError),
        (Answer(422, ["a list"]), ApiUnavailableError),
    ],
)
def test_raise_for(answer: Answer, error: type[Exception]) -> None:
    with pytest.raises(error):
        wire.raise_for(answer, POST)


def test_a_route_that_is_not_the_api_is_named_without_the_key() -> None:
    with pytest.raises(ApiUnavailableError) as raised:
        wire.raise_for(Answer(404, "<html>Not Found</html>"), wire.delete(ID))
    assert "DELETE /redemption_codes/" + ID in str(raised.value)
    assert "does not point at Zype's API" in str(raised.value)


@pytest.mark.parametrize(
    ("obj", "fields"),
    [
        (
            {"_id": ID, "code": "A1", "video_id": VIDEO.upper(), "redeemed": True,
             "redeemed_at": "2031-01-02T10:00:00.000-05:00", "available": False,
             "expiration_date": "2031-12-31T00:00:00.000-05:00"},
            {"kind": "video", "entitlement_id": VIDEO, "redeemed": True, "state": "redeemed",
             "expiration_date": "2031-12-31"},
        ),
        (
            {"_id": ID, "code": "A1", "plan_id": VIDEO, "redeemed?": False, "expired?": True,
             "expiration_date": "2020-01-01"},
            {"kind": "plan", "redeemed": False, "state": "expired"},
        ),
        (
            {"_id": ID, "code": "A1", "pass_plan_id": VIDEO, "redeemed": "false",
             "expired": "false", "video_id": None},
            {"kind": "pass_plan", "state": "available", "expiration_date": ""},
        ),
        (
            {"_id": ID, "code": "A1", "redeemed": False, "redeemed_at": "2031-01-02"},
            {"redeemed": True, "kind": "", "state": "redeemed"},  # a date means it was redeemed
        ),
    ],
)  # fmt: skip
def test_live_code_reads_both_flag_spellings(obj: dict[str, Any], fields: dict[str, Any]) -> None:
    live = wire.live_code(obj)
    for name, value in fields.items():
        assert getattr(live, name) == value, name


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"response": [{"_id": ID}], "pagination": {"next": 2}}, ([{"_id": ID}], 2)),
        ({"response": [{"_id": ID}, "junk"], "pagination": {"next": None}}, ([{"_id": ID}], None)),
        ({"response": []}, ([], None)),
        ({"response": [], "pagination": {"next": "2"}}, ([], None)),
        ({"response": [], "pagination": {"next": True}}, ([], None)),
        ({"response": {"_id": ID}}, None),
        ("<html>", None),
    ],
)
def test_code_list(body: Any, expected: Any) -> None:
    assert wire.code_list(Answer(200, body)) == expected


def test_requests_carry_what_the_api_documents() -> None:
    rec = record("PROMO1")
    assert orjson.loads(wire.create(rec).body or b"") == rec.payload()
    put = wire.update(ID, rec)
    assert (put.method, put.path) == ("PUT", f"/{ID}")
    assert orjson.loads(put.body or b"")["redemption_code"] == {
        "code": "PROMO1", "expiration_date": "2030-01-15", "video_id": VIDEO,
        "playlist_id": "", "plan_id": "", "pass_plan_id": "",
    }  # fmt: skip
    assert wire.delete("a/b?c").path == "/a%2Fb%3Fc"  # never another path
    assert dict(wire.page((("video_id", VIDEO),), 3).params) == {
        "video_id": VIDEO, "page": "3", "per_page": "100",
    }  # fmt: skip
    assert not wire.find("X").writes
    assert wire.delete(ID).writes


@pytest.mark.parametrize(
    ("value", "day"),
    [("2031-12-31T00:00:00.000-05:00", "2031-12-31"), ("2031-12-31", "2031-12-31"),
     ("", ""), (None, ""), ("31/12/2031", ""), (20311231, "")],
)  # fmt: skip
def test_date_part(value: Any, day: str) -> None:
    assert wire.date_part(value) == day
