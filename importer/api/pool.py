"""The worker pool: items done `concurrency` at a time, each batch announced before it goes.

Workers take the next item themselves and hand it to `perform` (an operation run by
:class:`~importer.api.engine.Runner`); the pool only keeps the count, announces batches (so the
journal marks them ``sending`` or ``deleting`` first), reports every outcome once, and stops and
drains on request. It knows nothing of what the operation is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from importer.errors import StopRun
from importer.models import Outcome, Record, Status

ItemT = TypeVar("ItemT")


@dataclass(frozen=True, slots=True)
class Work(Generic[ItemT]):
    """An item to do and whether an earlier run may already have done it."""

    item: ItemT
    record: Record
    unsure: bool = False


async def run_pool(
    work: Sequence[Work[ItemT]],
    perform: Callable[[Work[ItemT]], Awaitable[Outcome]],
    stopping: asyncio.Event,
    *,
    concurrency: int,
    batch_size: int,
    before_batch: Callable[[Sequence[Work[ItemT]]], None],
    on_outcome: Callable[[Work[ItemT], Outcome], None],
    drain_timeout: float,
    idle: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Send *work* with `concurrency` workers, announcing each batch before any of it goes out.

    `before_batch` marks a batch ``sending`` in the journal; `on_outcome` records each outcome,
    exactly once per announced item. Setting `stopping` stops taking work: waits for a
    slot or a backoff end at once, requests in flight get `drain_timeout` seconds to finish, then
    are cancelled and reported ``sending`` (looked up next run). Work that was announced but never
    started is reported ``pending``. A :class:`~importer.errors.StopRun` from any worker stops all
    and is re-raised once everything is recorded.
    """
    failure: list[StopRun] = []
    # Workers take the next item themselves, announcing a batch when they reach its start: no
    # feeder task and no queue, whose hand-offs cost a task switch per row. Between two awaits
    # nothing else runs, so taking an item and announcing its batch need no lock.
    handed = 0  # items given to a worker so far: work[:handed] have started
    announced = 0  # work[:announced] have been marked by before_batch

    def take() -> Work[ItemT] | None:
        nonlocal handed, announced
        if stopping.is_set() or handed >= len(work):
            return None
        if handed == announced:
            batch = work[announced : announced + batch_size]
            before_batch(batch)
            announced += len(batch)
        handed += 1
        return work[handed - 1]

    async def worker() -> None:
        while (item := take()) is not None:
            try:
                outcome = await perform(item)
            except StopRun as exc:
                failure.append(exc)
                stopping.set()
                # Its last request may have gone through: settle it by a lookup next run.
                outcome = Outcome(Status.SENDING, error=str(exc), unsure=True)
            except asyncio.CancelledError:
                # No answer within the drain timeout: the request may still be applied.
                on_outcome(item, Outcome(Status.SENDING, error="interrupted", unsure=True))
                raise
            on_outcome(item, outcome)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    stop_seen = asyncio.create_task(stopping.wait())
    pending_tasks: set[asyncio.Task[Any]] = set(workers)
    try:
        while pending_tasks:
            done, pending_tasks = await asyncio.wait(
                pending_tasks | {stop_seen}, timeout=0.25, return_when=asyncio.FIRST_COMPLETED
            )
            pending_tasks.discard(stop_seen)
            for task in done - {stop_seen}:
                task.result()
            if idle is not None:
                await idle()
            if stopping.is_set():
                break
        if pending_tasks:
            await asyncio.wait(workers, timeout=drain_timeout)
    finally:
        for task in (*workers, stop_seen):
            task.cancel()
        await asyncio.gather(*workers, stop_seen, return_exceptions=True)
    for item in work[handed:announced]:
        on_outcome(item, Outcome(Status.PENDING, unsure=item.unsure))
    if failure:
        raise failure[0]
