"""``--rate auto``'s policy against a simulated API whose limit it is never told.

The simulation (:mod:`tests.api.simulated`) moves a fake clock: every scenario runs in
milliseconds. Thresholds are the issue's: the time to send N against the least possible N/L,
and the share of requests answered 429.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.api.limiter import PacedLimiter
from importer.api.pacing import (
    AutoLimiter,
    AutoPace,
    Ticket,
    hold_pace,
)
from importer.api.wire import Answer
from tests.api.simulated import Scenario, simulate

FOUND = [
    pytest.param(Scenario(8, 200), 1.25, 0.02, id="8/s"),
    pytest.param(Scenario(35, 875), 1.25, 0.02, id="35/s"),
    pytest.param(Scenario(80, 2000, latency=0.15), 1.25, 0.02, id="80/s behind 150 ms"),
    pytest.param(Scenario(15, 1350, change_at=10, limit_after=60), 1.3, 0.03, id="15 to 60/s"),
    pytest.param(Scenario(60, 900, change_at=10, limit_after=15), 1.3, 0.03, id="60 to 15/s"),
    pytest.param(Scenario(80, 2000, latency=0.0, network=0.15), 1.25, 0.02, id="80/s, 150 ms away"),
    pytest.param(Scenario(40, 1000, headers=True), 1.15, 0.01, id="40/s stated in headers"),
]


@pytest.mark.parametrize(("scenario", "ratio", "refused"), FOUND)
@pytest.mark.parametrize("retry_after", [False, True], ids=["no Retry-After", "Retry-After"])
def test_an_unknown_limit_is_found_and_held(
    scenario: Scenario, ratio: float, refused: float, retry_after: bool
) -> None:
    result = simulate(replace(scenario, retry_after=retry_after))
    assert result.ratio <= ratio
    assert result.refused_share <= refused


@pytest.mark.xfail(
    reason="behind a jittery 100 ms round trip our count and the server's differ by one or two "
    "at the window's edge, so a probe passes falsely now and then, and the search that follows "
    "has a round trip of grants refused behind its 429: 35/s costs 5-14% 429s (goal 2%)"
)
@pytest.mark.parametrize("retry_after", [False, True], ids=["no Retry-After", "Retry-After"])
def test_probes_behind_a_network_round_trip(retry_after: bool) -> None:
    result = simulate(Scenario(35, 875, latency=0.0, network=0.1, retry_after=retry_after))
    assert result.ratio <= 1.25
    assert result.refused_share <= 0.02


def test_a_429_ahead_of_earlier_acceptances_does_not_restart_the_search() -> None:
    """The sandbox answers a 429 at once and an acceptance after its latency: the late
    acceptances of a fuller window than the level raise it, they do not prove a rise."""
    policy = AutoPace(remembered=None)
    tickets = [policy.on_sent(i / 100) for i in range(100)]  # 100/s for a second
    refused = policy.on_sent(1.0)
    assert refused.n_before == 99
    policy.on_throttle(refused, 1.001)
    assert policy.level == 49  # nothing answered yet: halved
    for ticket in tickets:
        policy.on_success(ticket, 1.15)
    assert policy.level == 99  # the fullest window accepted, one under the refused one


def test_a_probe_fills_the_window_to_the_level_and_all_of_it_accepted_is_a_rise() -> None:
    policy = AutoPace(remembered=10)
    probe: list[Ticket] = []
    now = 0.0
    while not probe:
        sent = [policy.on_sent(now)]
        while policy.wants_probe(now):
            sent.append(policy.on_sent(now))
        probe = [ticket for ticket in sent if ticket.probe]
        if not probe:
            policy.on_success(sent[0], now + 0.001)
        now += 1 / policy.pace
        assert now < 30, "no probe"
    assert max(ticket.n_before for ticket in probe) == 10  # the window holds the level
    for ticket in probe:
        assert policy.level == 10
        policy.on_success(ticket, now)
    assert policy.level is None  # every grant of it accepted: the limit rose, search again


def test_a_remembered_pace_is_held_from_the_first_seconds() -> None:
    result = simulate(Scenario(50, 1250, remembered=50))
    assert result.rate_between(0, 3) >= 40
    assert result.refused == 0


@pytest.mark.parametrize("remembered", [None, 24.0], ids=["first run", "remembered"])
@pytest.mark.parametrize("retry_after", [False, True], ids=["no Retry-After", "Retry-After"])
def test_a_window_filled_by_the_command_before_does_not_sink_the_level(
    remembered: float | None, retry_after: bool
) -> None:
    """A 429 that our own requests cannot explain (the run just before this one filled the
    server's window) halves the pace once and waits out the window; it does not set the level
    to the count we saw (none), which held a revoke at 1/s for two minutes."""
    result = simulate(
        Scenario(25, 500, leftover=25, remembered=remembered, retry_after=retry_after)
    )
    assert result.ratio <= 1.35
    assert result.refused_share <= 0.02
    assert result.level is not None
    assert result.level >= 20


def test_a_level_cut_too_far_climbs_back_within_seconds() -> None:
    """A probe comes at least every PROBE_MAX_SECONDS, however few grants a low level makes."""
    result = simulate(Scenario(40, 800, remembered=3))
    assert result.rate_between(13, 25) >= 30
    assert result.refused_share <= 0.02


def test_auto_never_goes_above_max_rate() -> None:
    result = simulate(Scenario(200, 1000, max_rate=50))
    assert max(pace for _, pace in result.paces) <= 50
    assert result.refused == 0


@given(
    limit=st.integers(3, 120),
    latency=st.floats(0.001, 0.3),
    max_rate=st.floats(5, 150),
    seed=st.integers(0, 1000),
)
@settings(max_examples=40, deadline=None)
def test_the_pace_stays_positive_and_capped(
    limit: int, latency: float, max_rate: float, seed: int
) -> None:
    # Every item is done (simulate returns then) and the pace never leaves (0, max_rate]. The share
    # refused is not bounded here: a short run behind a long latency overshoots in slow start
    # (limit 22/s behind 250 ms: 24% of 198 requests), which the scenarios above do not meet.
    result = simulate(Scenario(limit, 150, latency=latency, max_rate=max_rate, seed=seed))
    assert all(0 < pace <= max_rate for _, pace in result.paces)


@pytest.mark.parametrize(("level", "pace", "burst"), [(8, 7.77, 1), (40, 37.86, 2), (500, 100, 2)])
def test_the_held_pace_keeps_a_window_under_the_level(
    level: float, pace: float, burst: int
) -> None:
    held, held_burst = hold_pace(level, max_rate=100)
    assert (round(held, 2), held_burst) == (pace, burst)
    assert held + held_burst - 1 <= level


async def test_requests_in_flight_follow_the_pace() -> None:
    """The limiter lets as many requests be in flight as the pace needs at the latency seen."""
    policy = AutoPace(remembered=10, max_in_flight=64)
    limiter = AutoLimiter(policy, PacedLimiter(policy.pace))
    policy.latency = 0.0
    cap = limiter.in_flight
    tickets = []
    for _ in range(cap):
        await limiter.acquire()
        tickets.append(limiter.granted())
    assert not limiter.try_acquire()
    waiting = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiting.done()
    limiter.answered(tickets.pop(), Answer(201, {}))
    await asyncio.wait_for(waiting, 2)
    policy.latency = 1.0  # 10/s behind a second: Little's law wants 10 and a margin
    assert limiter.in_flight >= 10
