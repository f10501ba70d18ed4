"""The sandbox's rate limit: a sliding one-second window that counts refused requests too."""

from __future__ import annotations

import pytest

from importer.sandbox.app import RateWindow
from importer.sandbox.faults import Faults


def _admitted(window: RateWindow, times: list[float]) -> list[bool]:
    return [window.arrive(t)[0] is None for t in times]


def test_refused_requests_count_against_the_window() -> None:
    window = RateWindow(Faults(rate_limit=2))
    # 0.0 and 0.1 admitted; everything after is refused and counted, so sending on keeps the
    # window full: only after a quiet second (1.25 to 2.3) is a request admitted again
    times = [0.0, 0.1, 0.2, 0.9, 1.05, 1.25, 2.3]
    assert _admitted(window, times) == [True, True, False, False, False, False, True]


def test_the_limit_changes_once_mid_run() -> None:
    window = RateWindow(Faults(rate_limit=10, rate_limit_to=2, rate_change_at=5))
    assert window.limit(100.0) == 10  # the first request starts the clock
    assert window.limit(104.9) == 10
    assert window.limit(105.0) == 2


def test_stated_limits_and_a_429_without_retry_after() -> None:
    window = RateWindow(Faults(rate_limit=2, rate_headers=True, no_retry_after=True))
    refused, stated = window.arrive(0.0)
    assert refused is None
    assert stated == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "1",
        "X-RateLimit-Reset": "1",
    }
    window.arrive(0.5)
    refused, _ = window.arrive(0.6)
    assert refused == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1",
    }


def test_a_429_says_retry_after_by_default() -> None:
    window = RateWindow(Faults(rate_limit=1))
    window.arrive(0.0)
    assert window.arrive(0.5) == ({"Retry-After": "1"}, {})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate_limit_to": 5.0}, "rate_limit_to needs a rate_limit"),
        ({"rate_limit": 5.0, "rate_limit_to": 0.5}, "rate_limit_to must be at least 1"),
        ({"rate_limit": 5.0, "rate_change_at": -1.0}, "rate_change_at must be seconds >= 0"),
        ({"rate_headers": 2}, "rate_headers must be 0 or 1"),
    ],
)
def test_impossible_rate_faults_are_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults(**fields)  # type: ignore[arg-type]
