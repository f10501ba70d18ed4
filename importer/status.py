"""What ``zype-import status`` reports: the journal read as it is, without its lock.

A run in progress holds the journal's lock and writes to it; status only reads (SQLite's WAL lets
it read a consistent snapshot meanwhile) and never tries the lock, so it can neither block a run
nor be blocked by one. Whether the last run is still going is told by its pid and the lock
file's holder line instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from importer.errors import UsageError
from importer.journal import lock_path
from importer.models import Status


@contextlib.contextmanager
def read_journal(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection for ``status``: no lock, never blocks a running import."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no journal here yet (run an import first, or pass --journal)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield db
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path}: not a zype-import journal ({exc})") from None
    finally:
        db.close()


@dataclass(frozen=True)
class LastRun:
    """The newest run the journal recorded."""

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
    #: Its pid still runs and still holds the lock: not finished because it is still going.
    running: bool


@dataclass(frozen=True)
class JournalStatus:
    """What ``zype-import status`` reports."""

    #: Rows per state, every state listed.
    counts: dict[str, int]
    last_run: LastRun | None
    #: Rows the last run set out to send but never reached (a kill or a stop came first).
    unreached: int

    @property
    def left(self) -> int:
        """Rows still to do: failed, pending, sending, and those the last run never reached."""
        return sum(self.counts[s] for s in ("failed", "pending", "sending")) + self.unreached


def journal_status(path: str | Path) -> JournalStatus:
    """Read the journal at *path* (read-only, no lock) for ``status``."""
    path = Path(path)
    with read_journal(path) as db:
        counts = {s.value: 0 for s in Status if s != Status.INVALID}
        counts.update(db.execute("SELECT status, count(*) FROM rows GROUP BY status"))
        have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        planned = "codes, to_send" if "to_send" in have else "NULL, NULL"
        row = db.execute(
            f"SELECT source, pid, started, ended, outcome, summary, {planned}"
            " FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return JournalStatus(counts, None, 0)
        source, pid, started, ended, outcome, summary, codes, to_send = row
        unreached = 0
        if to_send:
            # Every row a run marks or records gets a newer `updated`; the rest it never reached.
            (reached,) = db.execute(
                "SELECT count(*) FROM rows WHERE updated >= ?", (started,)
            ).fetchone()
            unreached = max(to_send - reached, 0)
    stopped = json.loads(summary).get("stopped") if summary else None
    running = ended is None and _holds_lock(path, pid)
    last = LastRun(source, pid, started, ended, outcome, stopped, codes, to_send, running)
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
