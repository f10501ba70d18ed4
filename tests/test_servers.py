"""The independent imitation in ``tests/servers.py`` serves what undo, update and audit need."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from tests.servers import KEY, Served, independent_api

VIDEO = "5c8e0a3b1f2e4d6a7b8c9d0e"
PLAN = "7e0a2c5d3b4f6a8c9d0e1f2a"
EST = timezone(timedelta(hours=-5))


@pytest.fixture
def api() -> Iterator[Served]:
    with independent_api() as served:
        yield served


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield client


async def call(
    session: aiohttp.ClientSession, method: str, url: str, payload: Any = None, **params: Any
) -> tuple[int, Any]:
    async with session.request(
        method, url, params={**params, "api_key": KEY}, json=payload
    ) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def create(session: aiohttp.ClientSession, api: Served, code: str, **target: str) -> Any:
    fields = {"code": code, "expiration_date": "2030-01-15", **(target or {"video_id": VIDEO})}
    status, data = await call(
        session, "POST", f"{api.url}/redemption_codes", {"redemption_code": fields}
    )
    assert status == 201
    return data["response"]


async def test_put_then_delete_by_id(api: Served, session: aiohttp.ClientSession) -> None:
    obj = await create(session, api, "ONE")
    await create(session, api, "TWO")
    url = f"{api.url}/redemption_codes/{obj['_id']}"
    change = {"redemption_code": {"code": "Uno", "plan_id": PLAN}}
    status, data = await call(session, "PUT", url, change)
    assert status == 200
    assert (data["response"]["code"], data["response"]["plan_id"]) == ("Uno", PLAN)
    assert data["response"]["video_id"] is None
    taken = {"redemption_code": {"code": "two"}}
    assert (await call(session, "PUT", url, taken))[0] == 422
    assert (await call(session, "DELETE", url))[0] == 204
    assert (await call(session, "DELETE", url))[0] == 404
    assert (await call(session, "PUT", url, change))[0] == 404
    assert sorted(api.state.codes) == ["TWO"]
    assert (api.state.updated, api.state.deleted) == ([obj["_id"]], [obj["_id"]])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["A", "B", "C"]),
        ({"plan_id": PLAN}, ["B"]),
        ({"code": "c"}, ["C"]),
        ({"created_at.gte": "2030-01-01"}, ["B", "C"]),
        ({"created_at.lte": "2030-01-01"}, ["A", "B"]),
        ({"created_at.gte": "2030-01-01", "created_at.lte": "2030-01-01"}, ["B"]),
    ],
)
async def test_list_filters(
    api: Served, session: aiohttp.ClientSession, params: dict[str, str], expected: list[str]
) -> None:
    for code, when, target in [
        ("A", datetime(2029, 12, 31, 23, 0, tzinfo=EST), {}),
        ("B", datetime(2030, 1, 1, 0, 0, tzinfo=EST), {"plan_id": PLAN}),
        ("C", datetime(2030, 1, 3, 0, 0, tzinfo=EST), {}),
    ]:
        api.state.now = lambda when=when: when
        await create(session, api, code, **target)
    status, data = await call(session, "GET", f"{api.url}/redemption_codes", **params)
    assert status == 200
    assert [obj["code"] for obj in data["response"]] == expected


async def test_pages_and_flags_with_other_peoples_codes(
    api: Served, session: aiohttp.ClientSession
) -> None:
    mine = await create(session, api, "MINE")
    api.state.add_others(24, "video_id", VIDEO)
    api.state.add_others(5)
    api.state.redeem("mine")
    seen: list[Any] = []
    page: int | None = 1
    while page is not None:
        _, data = await call(
            session, "GET", f"{api.url}/redemption_codes", video_id=VIDEO, per_page=10, page=page
        )
        seen += data["response"]
        page = data["pagination"]["next"]
    assert len(seen) == 25
    first = seen[0]
    assert first["_id"] == mine["_id"]
    assert (first["redeemed"], first["available"], first["expired"]) == (True, False, False)
    assert first["redeemed_at"] is not None
    assert all(obj["available"] for obj in seen[1:])
    api.state.admin_delete("MINE")
    _, data = await call(session, "GET", f"{api.url}/redemption_codes/{mine['_id']}")
    assert data == {"message": "Not found"}
    assert len(api.state.codes) == 29
    assert (api.state.posts, api.state.deletes) == (1, 0)
