"""Which list calls read the live state of a journal's codes (pure), and the verdicts on them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from importer.api.live import plan_reads
from importer.api.ops import Held
from importer.api.wire import LiveCode
from importer.commands.audit import audit_line, differences
from importer.commands.run import decide_update
from importer.commands.undo import decide_undo
from importer.journal import Created
from importer.models import Record, Status
from tests.fakes import ID, OTHER, VIDEO


def at(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()


def made(n: int, day: str, entitlement: str = VIDEO) -> Created:
    record = Record(n + 2, f"code:C{n}", f"C{n}", "2031-12-31", "video", entitlement)
    return Created(record, f"{n:024x}", "created", at(day))


def test_nothing_to_read() -> None:
    assert plan_reads([]) == []


def test_codes_of_one_day_and_entitlement_are_one_window_by_entitlement() -> None:
    codes = [made(n, "2031-03-10") for n in range(250)]
    assert plan_reads(codes) == [
        (
            ("video_id", VIDEO),
            ("created_at.gte", "2031-03-09"),
            ("created_at.lte", "2031-03-12"),
        )
    ]


def test_days_close_together_share_a_window_far_apart_do_not() -> None:
    codes = [made(0, "2031-03-10"), made(1, "2031-03-12"), made(2, "2031-05-01")]
    windows = [dict(filters) for filters in plan_reads(codes)]
    assert [(w["created_at.gte"], w["created_at.lte"]) for w in windows] == [
        ("2031-03-09", "2031-03-14"),
        ("2031-04-30", "2031-05-03"),
    ]


def test_many_entitlements_for_few_codes_read_by_window_only() -> None:
    # 150 codes over 150 videos: one list per video would cost 150 requests, a window 2.
    codes = [made(n, "2031-03-10", f"{n:024x}") for n in range(150)]
    [window] = plan_reads(codes)
    assert [name for name, _ in window] == ["created_at.gte", "created_at.lte"]


def test_few_entitlements_for_many_codes_read_by_entitlement() -> None:
    codes = [made(n, "2031-03-10", VIDEO if n % 2 else OTHER) for n in range(300)]
    plans = plan_reads(codes)
    assert sorted(dict(p).get("video_id", "") for p in plans) == sorted([VIDEO, OTHER])


def live(redeemed: bool = False, **fields: str) -> LiveCode:
    values = {
        "api_id": ID, "code": "C1", "expiration_date": "2031-12-31", "kind": "video",
        "entitlement_id": VIDEO, "redeemed_at": "2031-04-01T10:00:00.000-05:00" if redeemed else "",
    } | fields  # fmt: skip
    return LiveCode(redeemed=redeemed, expired=False, **values)  # type: ignore[arg-type]


CODE = Created(Record(3, "code:C1", "C1", "2031-12-31", "video", VIDEO), ID, "created", 0.0)


@pytest.mark.parametrize(
    ("found", "status"),
    [(live(), None), (live(redeemed=True), Status.KEPT), (None, Status.DELETED)],
)
def test_decide_undo(found: LiveCode | None, status: Status | None) -> None:
    verdict = decide_undo(CODE, found)
    assert (verdict.status if verdict else None) == status
    if status == Status.KEPT:
        assert "2031-04-01" in verdict.error  # when it was redeemed


EDITED = Held(Record(3, "code:C1", "C1", "2032-06-30", "video", VIDEO), ID)


@pytest.mark.parametrize(
    ("found", "status"),
    [
        (live(), None),  # Zype holds the old values: PUT
        (live(expiration_date="2032-06-30"), Status.UPDATED),  # a PUT that landed already
        (live(redeemed=True), Status.KEPT),
        (None, Status.MISSING),
    ],
)
def test_decide_update(found: LiveCode | None, status: Status | None) -> None:
    verdict = decide_update(EDITED, found)
    assert (verdict.status if verdict else None) == status


@pytest.mark.parametrize(
    ("found", "state", "changed", "soon"),
    [
        (live(), "available", "", ""),
        (live(redeemed=True), "redeemed", "", ""),
        (None, "missing", "", ""),
        (live(expiration_date="2032-01-31"), "available", "2031-12-31 -> 2032-01-31", ""),
        (live(entitlement_id=OTHER), "available", f"{VIDEO} -> video {OTHER}", ""),
        (live(code="C9"), "available", "code C1 -> C9", ""),
        (live(expiration_date="2031-12-20"), "available", "expiration", "in 10 days"),
    ],
)  # fmt: skip
def test_audit_line(found: LiveCode | None, state: str, changed: str, soon: str) -> None:
    line = audit_line(CODE, found, date(2031, 12, 10), 15)
    assert (line.state, line.expiring_soon) == (state, soon)
    assert changed in line.changed
    assert bool(line.changed) == bool(changed)


def test_no_differences_for_an_id_in_another_case() -> None:
    assert differences(CODE.record, live(entitlement_id=VIDEO.lower())) == ""
