"""Rate-limit headers read into the limit they state, in each spelling that is read."""

from __future__ import annotations

import pytest

from importer.api.rate_headers import RateInfo, rate_headers


@pytest.mark.parametrize(
    ("headers", "info"),
    [
        ({"X-RateLimit-Limit": "40", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1"},
         RateInfo(40, None, 3, 1)),
        ({"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "5",
          "ratelimit-policy": "100;w=10"}, RateInfo(100, 10, 0, 5)),
        ({"RateLimit": "limit=10, remaining=2, reset=4"}, RateInfo(10, None, 2, 4)),
        ({"RateLimit-Policy": '"default";q=50;w=1', "RateLimit": '"default";r=7;t=1'},
         RateInfo(50, 1, 7, 1)),
        ({"X-RateLimit-Limit": "40", "X-RateLimit-Reset": "2000000010"},
         RateInfo(40, None, None, 10)),
        ({"Retry-After": "1"}, None),
        ({"X-RateLimit-Limit": "0"}, None),
        ({"X-RateLimit-Limit": "many"}, None),
    ],
)  # fmt: skip
def test_rate_limit_headers_are_read(headers: dict[str, str], info: RateInfo | None) -> None:
    assert rate_headers(headers, now=2_000_000_000.0) == info
