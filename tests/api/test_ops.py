"""The update, delete and read protocols, driven with canned answers: no I/O, no waiting."""

from __future__ import annotations

from typing import Any

import pytest

from importer.api.engine import Attempt
from importer.api.ops import DELETE, FIND_CODE, GET_ONE, LIST_PAGE, PROBE, UPDATE, Held, Page
from importer.api.wire import Answer
from importer.errors import (
    ApiUnavailableError,
    AuthError,
    Interrupted,
    RateLimitedError,
    RejectedError,
    ServerError,
)
from importer.models import Status
from tests.fakes import ID, OTHER, VIDEO, drive, item, message, record

HELD = Held(record(), ID)
MOVED = Held(record(entitlement=OTHER), ID)


def one(**fields: Any) -> Answer:
    return Answer(200, {"response": item(**fields)})


@pytest.mark.parametrize(
    ("held", "answer", "expected"),
    [
        (HELD, one(), Status.UPDATED),
        (MOVED, one(video_id=OTHER), Status.UPDATED),
        (MOVED, one(), Status.FAILED),  # the API kept other values than sent
        (HELD, message(404, "Redemption code not found"), Status.MISSING),
        (HELD, Answer(200, {"response": {}}), ServerError),  # no code: retried (PUT is idempotent)
        (HELD, message(422, "Video not found"), RejectedError),
        (HELD, Answer(404, "<html>nope</html>"), ApiUnavailableError),
        (HELD, message(401, "no"), AuthError),
        (HELD, message(503, "down"), ServerError),
    ],
)
def test_update(held: Held, answer: Answer, expected: Status | type[Exception]) -> None:
    if isinstance(expected, Status):
        outcome = drive(UPDATE, held, [answer])
        assert outcome.status == expected
        if expected == Status.UPDATED:
            assert outcome.fingerprint == held.record.fingerprint.lower()

    else:
        with pytest.raises(expected):
            drive(UPDATE, held, [answer])


def test_an_update_keeps_the_title_zype_now_gives() -> None:
    outcome = drive(UPDATE, MOVED, [one(video_id=OTHER, content_title="Sequel")])
    assert (outcome.status, outcome.content_title) == (Status.UPDATED, "Sequel")


@pytest.mark.parametrize(
    ("doubted", "answer", "expected", "error"),
    [
        (False, Answer(204, None), Status.DELETED, ""),
        (False, Answer(200, {"response": item()}), Status.DELETED, ""),
        (False, message(404, "Redemption code not found"), Status.DELETED, "already gone"),
        (True, message(404, "Redemption code not found"), Status.DELETED, ""),  # ours, before
        (False, Answer(404, "<html>Not Found</html>"), ApiUnavailableError, ""),
        (False, message(422, "cannot delete"), RejectedError, ""),
        (False, message(429, "slow", "1"), RateLimitedError, ""),
        (False, message(500, "boom"), ServerError, ""),
    ],
)
def test_delete(
    doubted: bool, answer: Answer, expected: Status | type[Exception], error: str
) -> None:
    state = Attempt(unsure=doubted, doubted=doubted)
    if isinstance(expected, Status):
        outcome = drive(DELETE, HELD, [answer], state)
        assert (outcome.status, outcome.api_id) == (expected, ID)
        assert error in outcome.error
    else:
        with pytest.raises(expected):
            drive(DELETE, HELD, [answer], state)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(200, {"response": [], "pagination": {"next": None}}), True),
        (Answer(200, {"response": []}), True),
        (message(404, "Not found"), ApiUnavailableError),  # JSON 404 to the list: a wrong path
        (Answer(404, "<html>Not Found</html>"), ApiUnavailableError),
        (Answer(200, "<html>Welcome to nginx</html>"), ApiUnavailableError),
        (Answer(200, {"data": []}), ApiUnavailableError),
        (message(401, "no"), AuthError),
        (message(503, "down"), ServerError),
    ],
)
def test_probe(answer: Answer, expected: bool | type[Exception]) -> None:
    if expected is True:
        assert drive(PROBE, "http://api.test", [answer]) is True
    else:
        with pytest.raises(expected) as raised:
            drive(PROBE, "http://api.test", [answer])
        if expected is ApiUnavailableError:
            assert "http://api.test" in str(raised.value)


def test_list_page_matches_by_id_and_follows_next() -> None:
    page = Answer(
        200,
        {"response": [item(api_id=ID), item("X", api_id="b2" * 12)], "pagination": {"next": 4}},
    )
    found, following = drive(LIST_PAGE, Page((("video_id", VIDEO),), 3), [page])
    assert set(found) == {ID, "b2" * 12}
    assert following == 4
    stuck = Answer(200, {"response": [], "pagination": {"next": 3}})
    assert drive(LIST_PAGE, Page((), 3), [stuck]) == ({}, None)  # never loops on one page
    with pytest.raises(ServerError):
        drive(LIST_PAGE, Page((), 1), [Answer(200, {"oops": 1})])


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        (Answer(200, {"response": item()}), True),
        (message(404, "Redemption code not found"), False),
    ],
)
def test_get_one(answer: Answer, found: bool) -> None:
    live = drive(GET_ONE, ID, [answer])
    assert (live is not None) == found


def test_reads_stop_the_run_rather_than_give_a_partial_answer() -> None:
    with pytest.raises(ApiUnavailableError, match="could not read"):
        LIST_PAGE.gave_up(Page(()), Attempt(), ServerError("down"))
    with pytest.raises(Interrupted):
        GET_ONE.stopped(ID, Attempt())


def _listed(*items: dict[str, Any]) -> Answer:
    return Answer(200, {"response": list(items), "pagination": {"next": None}})


HEXLIKE = "c0ffee" * 4  # a code shaped like an id: GET /{code} could read it as an id


@pytest.mark.parametrize(
    ("code", "answers", "found", "requests"),
    [
        # the path by code answers the object itself
        ("PROMO1", [Answer(200, {"response": item()})], ID, ["GET /redemption_codes/PROMO1"]),
        ("promo1", [Answer(200, {"response": item()})], ID, ["GET /redemption_codes/promo1"]),
        ("PROMO1", [message(404, "Redemption code not found")], None,
         ["GET /redemption_codes/PROMO1"]),
        # an answer for another code (the path read it as someone's id): the list filter settles
        ("PROMO1", [Answer(200, {"response": item("OTHER")}), _listed(item("XPROMO1", "b2" * 12))],
         None, ["GET /redemption_codes/PROMO1", "GET /redemption_codes"]),
        # an id-shaped code goes to the list filter at once, matched exactly
        (HEXLIKE, [_listed(item("X" + HEXLIKE, "b2" * 12), item(HEXLIKE.upper()))], ID,
         ["GET /redemption_codes"]),
        (HEXLIKE, [_listed()], None, ["GET /redemption_codes"]),
    ],
)  # fmt: skip
def test_find_code_by_its_code(
    code: str, answers: list[Answer], found: str | None, requests: list[str]
) -> None:
    sent: list[str] = []
    gen = FIND_CODE.steps(code, Attempt())
    request = next(gen)
    result: Any = None
    for answer in answers:
        sent.append(request.describe())
        if request.path == "":
            assert ("code", code) in request.params
        try:
            request = gen.send(answer)
        except StopIteration as stop:
            result = stop.value
            break
    assert sent == requests
    assert (result.api_id if result is not None else None) == found


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (Answer(200, {"response": {}}), ServerError),
        (Answer(404, "<html>nope</html>"), ApiUnavailableError),
        (message(401, "no"), AuthError),
        (message(503, "down"), ServerError),
    ],
)
def test_find_code_never_takes_a_bad_answer_for_absent(
    answer: Answer, raised: type[Exception]
) -> None:
    with pytest.raises(raised):
        drive(FIND_CODE, "PROMO1", [answer])
    with pytest.raises(ApiUnavailableError, match="could not read"):
        FIND_CODE.gave_up("PROMO1", Attempt(), ServerError("down"))
