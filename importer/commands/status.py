"""What ``zype-import status`` reports: the journal read as it is, without its lock.

A run in progress holds the journal's lock and writes to it; status only reads (through
:func:`importer.journal.read_only`) and never tries the lock, so it can neither block a run nor
be blocked by one. Whether the last run is still going is told by its pid and the lock file's
holder line instead.

The whole picture of the last run: its sheet's rows (invalid ones included, from the run's plan),
the journal's states, and the rows it set out to send but never reached (new rows it never
marked; rows already in the journal are counted once, in their state).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from importer.journal import (
    UNFINISHED,
    last_run,
    lock_path,
    new_rows_since,
    read_only,
    state_counts,
)


@dataclass(frozen=True)
class LastRun:
    """The newest run the journal recorded."""

    command: str
    source: str
    pid: int
    started: float
    ended: float | None
    outcome: str | None
    #: Why it stopped part-way (from its summary), if it did.
    stopped: str | None
    #: Codes the sheet held and codes the run set out to send (None: it died before planning).
    codes: int | None
    to_send: int | None
    #: The sheet's rows, and its invalid rows, as the run found them (None: not recorded).
    rows: int | None
    invalid: int | None
    #: The run's result counts, when it finished (from its summary).
    counts: dict[str, int]
    #: Its pid still runs and still holds the lock: not finished because it is still going.
    running: bool


@dataclass(frozen=True)
class JournalStatus:
    """What ``zype-import status`` reports."""

    #: Rows per journal state, every state listed.
    counts: dict[str, int]
    last_run: LastRun | None
    #: New rows the last run set out to send but never reached (a kill or a stop came first).
    unreached: int

    @property
    def left(self) -> int:
        """Rows still to do: failed, pending, sending, deleting, and new rows never reached."""
        return sum(self.counts.get(state, 0) for state in UNFINISHED) + self.unreached

    def as_json(self) -> dict[str, Any]:
        """The JSON form (``status --json``)."""
        return {**asdict(self), "left": self.left}


def journal_status(path: str | Path) -> JournalStatus:
    """Read the journal at *path* (read-only, no lock) for ``status``."""
    path = Path(path)
    with read_only(path) as db:
        counts = state_counts(db)
        run = last_run(db)
        reached_new = new_rows_since(db, run.started) if run is not None else 0
    if run is None:
        return JournalStatus(counts, None, 0)
    plan = run.plan
    unreached = max(int(plan.get("fresh") or 0) - reached_new, 0) if plan else 0
    summary_counts = run.summary.get("counts")
    last = LastRun(
        run.command,
        run.source,
        run.pid,
        run.started,
        run.ended,
        run.outcome,
        run.summary.get("stopped"),
        plan.get("codes"),
        plan.get("to_send"),
        plan.get("rows"),
        plan.get("invalid"),
        dict(summary_counts) if isinstance(summary_counts, dict) else {},
        run.ended is None and _holds_lock(path, run.pid),
    )
    return JournalStatus(counts, last, unreached)


def _holds_lock(path: Path, pid: int) -> bool:
    """Whether process *pid* is alive and the lock file names it as the holder.

    Never tries the lock itself: even a shared probe would, for an instant, make a run that
    starts at the same moment refuse to start.
    """
    try:
        holder = lock_path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if not holder.startswith(f"pid {pid},"):
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except PermissionError:
        return True  # it exists, under another user
    except OSError:
        return False
    return True
