"""What Zype holds now for the codes a journal created, read with list calls, not one GET each.

Reading N codes one ``GET /redemption_codes/{id}`` at a time costs N requests; the list call
returns 100 a page. :func:`plan_reads` picks filters that cover every created code and little
else: ``created_at`` windows around the days the codes were created (a day of margin on each
side, since the journal's clock and the account's time zone are not Zype's), narrowed by
entitlement when the codes share few entitlements. Items are matched by ``_id``, so other
people's codes in the same window are skipped. A code no page showed (deleted, or moved to
another entitlement in Zype's admin) is then read by id: a 404 in the API's format means Zype
no longer holds it. The cost is about N/100 requests, plus one per code that went astray.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from importer.api.engine import Runner
from importer.api.ops import GET_ONE, LIST_PAGE, Page
from importer.api.wire import PER_PAGE, LiveCode
from importer.journal import Created
from importer.models import entitlement_field

Filters = tuple[tuple[str, str], ...]

#: Days of margin around each window, for clock and time-zone differences.
MARGIN = timedelta(days=1)
#: Creation days closer than this share one window.
JOIN_GAP = timedelta(days=2)
#: Codes no page showed that are read one by one; more than this (or than a page per hundred
#: codes) are looked for by a sweep of the windows without the entitlement filter first.
STRAYS = 5


def plan_reads(codes: Sequence[Created], *, by_entitlement: bool = True) -> list[Filters]:
    """The list filters that cover *codes*: one ``created_at`` window per cluster of days,
    split by entitlement when there are no more entitlements than pages of codes (and
    `by_entitlement` allows it)."""
    if not codes:
        return []
    windows = _windows(sorted({_day(c.created_at) for c in codes}))
    groups: dict[tuple[str, str], int] = defaultdict(int)
    for code in codes:
        groups[(code.record.kind, code.record.entitlement_id)] += 1
    by_entitlement = by_entitlement and len(groups) <= max(1, math.ceil(len(codes) / PER_PAGE))
    plans: list[Filters] = []
    for first, last in windows:
        window = (
            ("created_at.gte", (first - MARGIN).isoformat()),
            ("created_at.lte", (last + MARGIN + timedelta(days=1)).isoformat()),
        )
        if by_entitlement:
            plans.extend(
                ((entitlement_field(kind), target), *window) for kind, target in sorted(groups)
            )
        else:
            plans.append(window)
    return plans


def _day(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp, UTC).date()


def _windows(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days joined into ``(first, last)`` spans wherever the gap is under JOIN_GAP."""
    spans: list[tuple[date, date]] = []
    for day in days:
        if spans and day - spans[-1][1] <= JOIN_GAP:
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


async def read_live(
    runner: Runner, codes: Sequence[Created], concurrency: int = 8
) -> dict[str, LiveCode | None]:
    """What Zype holds for each of *codes*, by API id (None: Zype no longer holds it)."""
    wanted = {c.api_id for c in codes if c.api_id}
    found: dict[str, LiveCode] = {}

    async def sweep(filters: Filters) -> None:
        number: int | None = 1
        while number is not None:
            page, number = await runner.perform(LIST_PAGE, Page(filters, number))
            found.update((api_id, live) for api_id, live in page.items() if api_id in wanted)

    plans = plan_reads(codes)
    await asyncio.gather(*(sweep(filters) for filters in plans))
    astray = sorted(wanted - found.keys())
    if len(astray) > max(STRAYS, len(codes) // PER_PAGE):
        # Many codes moved to another entitlement in Zype's admin: one sweep of the windows
        # alone finds them for about a page per hundred codes, not a request each.
        missed = set(astray)
        wider = plan_reads([c for c in codes if c.api_id in missed], by_entitlement=False)
        if wider != plans:
            await asyncio.gather(*(sweep(filters) for filters in wider))
            astray = sorted(wanted - found.keys())
    result: dict[str, LiveCode | None] = dict(found)
    slots = asyncio.Semaphore(concurrency)

    async def one(api_id: str) -> None:
        async with slots:
            result[api_id] = await runner.perform(GET_ONE, api_id)

    await asyncio.gather(*(one(api_id) for api_id in astray))
    return result
