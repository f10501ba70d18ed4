"""Progress of a run: a tqdm bar on a terminal, plain log lines at an interval otherwise (cron)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger("importer")


class Progress:
    """Counts outcomes by status and shows them; call :meth:`advance` once per finished record."""

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO,
        interval: float,
        enabled: bool = True,
        pace: Callable[[], float] | None = None,
    ) -> None:
        """`pace` reads the limiter's pace, shown beside the counts (``--rate auto``)."""
        self.total = total
        self._pace = pace
        self.counts: Counter[str] = Counter()
        self._interval = interval
        self._started = self._last = time.monotonic()
        self._logged = -1
        self._bar: tqdm[Any] | None = None
        self._enabled = enabled and total > 0
        if self._enabled and stream.isatty():
            self._bar = tqdm(total=total, file=stream, unit="code", dynamic_ncols=True)

    def advance(self, status: str) -> None:
        """One record finished with *status*."""
        self.counts[status] += 1
        if self._bar is not None:
            self._bar.update(1)
            return
        now = time.monotonic()
        if self._enabled and now - self._last >= self._interval:
            self._last = now
            self._log(now)

    @contextlib.contextmanager
    def redirect_logging(self) -> Iterator[None]:
        """While the bar shows, route log lines through tqdm so they never break it."""
        if self._bar is None:
            yield
        else:
            with logging_redirect_tqdm():
                yield

    def refresh(self) -> None:
        """Show the counts by status on the bar (called a few times a second, not per row)."""
        if self._bar is not None:
            shown: dict[str, object] = dict(sorted(self.counts.items()))
            if self._pace is not None:
                shown["pace"] = f"{self._pace():.1f}/s"
            self._bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        """Finish the bar, or log the final line."""
        if self._bar is not None:
            self.refresh()
            self._bar.close()
        elif self._enabled:
            self._log(time.monotonic())

    def _log(self, now: float) -> None:
        done = sum(self.counts.values())
        if done == self._logged:
            return
        self._logged = done
        elapsed = max(now - self._started, 1e-9)
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        pace = "" if self._pace is None else f", pace {self._pace():.1f}/s"
        log.info(
            "progress: %d/%d done (%s), %.1f/s%s",
            done,
            self.total,
            by_status or "none",
            done / elapsed,
            pace,
        )
