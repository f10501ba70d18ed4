"""The paced limiter on a virtual clock: no test sleeps for real."""

from __future__ import annotations

import asyncio
import bisect
import heapq
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.api.limiter import RECOVERY_SECONDS, PacedLimiter, pacing_for


class VirtualTime:
    """A clock and a sleep for many tasks: time jumps to the next wake-up once every task waits.

    "Every task waits" is seen as quiet: a few turns of the event loop in which no task read the
    clock, slept or finished (callers queued on the limiter's lock wait for its holder, who
    sleeps here).
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._activity = 0

    def clock(self) -> float:
        self._activity += 1
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._seq += 1
        self._activity += 1
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), self._seq, future))
        await future

    async def run(self, *coros: Coroutine[Any, Any, None]) -> None:
        """Run *coros* to the end, jumping the clock whenever all of them wait."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            while not all(t.done() for t in tasks):
                await self._quiet(tasks)
                if all(t.done() for t in tasks):
                    break
                assert self._sleepers, "deadlock: tasks wait on something that never comes"
                when, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, when)
                future.set_result(None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            task.result()

    async def _quiet(self, tasks: Sequence[asyncio.Future[None]]) -> None:
        still = 0
        while still < 3:
            before = (self._activity, sum(t.done() for t in tasks))
            await asyncio.sleep(0)
            still = still + 1 if before == (self._activity, sum(t.done() for t in tasks)) else 0


def peak(times: Sequence[float], window: float = 1.0) -> int:
    """The most grants in any half-open window ``[t, t + window)`` (times sorted)."""
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


async def drive(
    limiter: PacedLimiter,
    vt: VirtualTime,
    total: int,
    *,
    tasks: int = 50,
    latency: float = 0.02,
    also: Callable[[], Awaitable[None]] | None = None,
    fast: bool = False,
) -> list[float]:
    """`tasks` workers acquire until `total` grants, each holding its grant `latency` s.

    `fast`: each tries :meth:`~PacedLimiter.try_acquire` first, as the submitter does.
    """
    grants: list[float] = []

    async def worker() -> None:
        while len(grants) < total:
            if not (fast and limiter.try_acquire()):
                await limiter.acquire()
            if len(grants) >= total:
                return
            grants.append(vt.now)
            await vt.sleep(latency)

    coros = [worker() for _ in range(tasks)]
    if also is not None:
        coros.append(also())
    await vt.run(*coros)
    return grants


# --- pacing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "pace", "burst"),
    [
        (1, 0.5, 1),
        (2, 1, 1),
        (5, 4, 1),
        (10, 9, 1),
        (19, 18, 1),
        (20, 18, 2),
        (50, 48, 2),
        (100, 98, 2),
        (200, 198, 2),
        (1000, 990, 2),
        (10_000, 9_900, 2),
    ],
)
def test_pacing_keeps_burst_plus_one_second_of_pace_under_the_limit(
    limit: float, pace: float, burst: int
) -> None:
    got_pace, got_burst = pacing_for(limit)
    assert (got_pace, got_burst) == (pytest.approx(pace), burst)
    assert got_pace + got_burst - 1 < limit


@pytest.mark.parametrize("limit", [0, -1, math.nan])
def test_pacing_refuses_an_impossible_limit(limit: float) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        pacing_for(limit)


# --- the promise: never more than `limit` in any second, from the first --------------------------


@pytest.mark.parametrize("fast", [False, True], ids=["acquire", "try_acquire first"])
@pytest.mark.parametrize("limit", [5, 10, 100, 1000])
async def test_no_one_second_window_holds_more_than_the_limit(limit: int, fast: bool) -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(limit, clock=vt.clock, sleep=vt.sleep)
    total = max(3 * limit, 30)
    grants = await drive(limiter, vt, total, tasks=min(limit, 60), fast=fast)

    assert len(grants) == total
    assert grants[0] == 0.0
    assert peak(grants) <= limit - 1  # one request of headroom for bunching on the way
    first_second = bisect.bisect_left(grants, 1.0)
    assert first_second <= limit - 1
    pace, burst = pacing_for(limit)
    achieved = (len(grants) - burst) / (grants[-1] - grants[0])
    assert achieved >= pace * 0.999
    assert achieved >= limit - burst - 0.01 * limit


async def test_try_acquire_grants_when_a_slot_is_due_and_never_waits() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(100, clock=vt.clock, sleep=vt.sleep)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]  # the burst of 2
    vt.now += 1 / limiter.pace
    assert limiter.try_acquire()
    assert not limiter.try_acquire()


async def test_try_acquire_never_jumps_the_queue() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(100, clock=vt.clock, sleep=vt.sleep)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, True]
    queued = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)  # it takes its turn and sleeps until its slot
    vt.now += 10.0  # long past that slot, but the queued caller has not run yet
    assert not limiter.try_acquire()
    queued.cancel()
    await asyncio.gather(queued, return_exceptions=True)
    assert limiter.try_acquire()  # nobody queued any more


async def test_try_acquire_refuses_during_a_429_pause() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(100, clock=vt.clock, sleep=vt.sleep)
    limiter.throttled(2.0)
    assert not limiter.try_acquire()
    vt.now += 2.0
    assert limiter.try_acquire()


async def test_an_idle_limiter_grants_at_most_the_burst_at_once() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(100, clock=vt.clock, sleep=vt.sleep)
    grants = await drive(limiter, vt, 10, tasks=10, latency=0.0)
    assert grants[:2] == [0.0, 0.0]
    assert grants[2] == pytest.approx(1 / 98)


@settings(max_examples=40, deadline=None)
@given(
    limit=st.sampled_from([3, 7, 20, 60]),
    arrivals=st.lists(st.floats(0, 4, allow_nan=False), min_size=1, max_size=150),
)
def test_any_arrival_pattern_stays_under_the_limit(limit: int, arrivals: list[float]) -> None:
    async def scenario() -> list[float]:
        vt = VirtualTime()
        limiter = PacedLimiter(limit, clock=vt.clock, sleep=vt.sleep)
        grants: list[float] = []

        async def caller(at: float) -> None:
            await vt.sleep(at)
            await limiter.acquire()
            grants.append(vt.now)

        await vt.run(*(caller(at) for at in arrivals))
        return grants

    grants = asyncio.run(scenario())
    assert len(grants) == len(arrivals)
    assert peak(sorted(grants)) <= limit


# --- 429: everyone pauses, the pace halves, then climbs back -------------------------------------


async def test_a_429_pauses_every_caller_until_retry_after() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(10, clock=vt.clock, sleep=vt.sleep)
    full = limiter.full_pace

    async def server_says_429_at_2s() -> None:
        await vt.sleep(2.0)
        limiter.throttled(3.0)
        assert limiter.pace == pytest.approx(full / 2)

    grants = await drive(limiter, vt, 60, tasks=8, also=server_says_429_at_2s)

    assert not [t for t in grants if 2.0 < t < 5.0]
    assert min(t for t in grants if t > 2.0) == pytest.approx(5.0)
    assert peak(grants) <= 10
    after = [t for t in grants if t >= 5.0]
    # Right after the pause the pace is about half: fewer than full in the first second.
    assert bisect.bisect_left(after, 6.0) <= full / 2 + 1


async def test_the_pace_recovers_to_full_about_ten_seconds_after_the_pause() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(100, clock=vt.clock, sleep=vt.sleep)
    full = limiter.full_pace
    limiter.throttled(1.0)
    assert limiter.pace == pytest.approx(full / 2)
    assert limiter.paused_until == 1.0

    seen: dict[float, float] = {}

    async def watch() -> None:
        for moment in (1.0, 3.5, 6.0, 8.5, 10.9, 11.0, 15.0):
            await vt.sleep(moment - vt.now)
            await limiter.acquire()
            seen[moment] = limiter.pace

    await vt.run(watch())
    assert seen[1.0] == pytest.approx(full / 2)
    assert seen[6.0] == pytest.approx(full * 0.75)
    assert seen[10.9] < full
    assert seen[1.0 + RECOVERY_SECONDS] == pytest.approx(full)
    assert seen[15.0] == full
    assert seen[1.0] < seen[3.5] < seen[6.0] < seen[8.5] < seen[10.9]


async def test_many_429s_at_once_cut_the_pace_once() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(100, clock=vt.clock, sleep=vt.sleep)
    for _ in range(8):  # every request in flight meets the same overload
        limiter.throttled(1.0)
    assert limiter.pace == pytest.approx(limiter.full_pace / 2)


async def test_429s_a_second_apart_keep_cutting_down_to_one_per_second() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(20, clock=vt.clock, sleep=vt.sleep)
    paces = []

    async def keep_refusing() -> None:
        for _ in range(8):
            limiter.throttled(1.0)
            paces.append(limiter.pace)
            await vt.sleep(1.0)

    await vt.run(keep_refusing())
    assert paces[:4] == pytest.approx([9.0, 4.5, 2.25, 1.125])
    assert paces[-1] == 1.0


@pytest.mark.parametrize(("retry_after", "resumes"), [(None, 1.0), (0.0, 0.0), (2.5, 2.5)])
async def test_the_pause_lasts_retry_after_or_one_second_without_it(
    retry_after: float | None, resumes: float
) -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(50, clock=vt.clock, sleep=vt.sleep)
    limiter.throttled(retry_after)
    grants = await drive(limiter, vt, 3, tasks=3, latency=0.0)
    assert grants[0] == pytest.approx(resumes)


async def test_callers_already_waiting_for_a_slot_are_held_by_a_later_429() -> None:
    vt = VirtualTime()
    limiter = PacedLimiter(5, clock=vt.clock, sleep=vt.sleep)  # a slot every 0.25 s

    async def refuse_at(at: float) -> None:
        await vt.sleep(at)
        limiter.throttled(2.0)

    grants = await drive(limiter, vt, 6, tasks=6, latency=0.0, also=lambda: refuse_at(0.3))
    assert grants[:2] == [0.0, 0.25]
    assert all(t >= 2.3 for t in grants[2:])


@pytest.mark.parametrize("limit", [10, 100, 1000])
async def test_a_held_up_event_loop_does_not_release_a_bunch(limit: int) -> None:
    """Slots that pass while the loop is busy (a journal commit, a GC pause) are not all granted
    at once when it comes back: grants are checked against the actual time."""
    vt = VirtualTime()
    limiter = PacedLimiter(limit, clock=vt.clock, sleep=vt.sleep)

    async def busy_loop() -> None:
        for _ in range(12):
            await vt.sleep(0.25)
            vt.now += 0.08  # nothing runs for 80 ms

    grants = await drive(limiter, vt, 4 * limit, tasks=min(limit, 60), also=busy_loop)
    assert peak(grants) <= limit
    assert max(Counter(grants).values()) <= limiter.burst


async def test_one_more_wakes_a_caller_asleep_until_its_slot() -> None:
    """``--rate auto``'s probe: the extra grant goes out at once, not at the next slot."""
    limiter = PacedLimiter(2.0)  # one a second
    limiter.wakeable = True
    await limiter.acquire()
    waiting = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    limiter.allow_one_more()
    await asyncio.wait_for(waiting, 0.5)
