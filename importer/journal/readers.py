"""Reading a journal without its lock: for ``status``, ``validate`` and ``cards``, which must
neither block a running import nor be blocked by one (SQLite's WAL gives them a consistent
snapshot). A reader never migrates: columns added since a journal was made are read only when
present, so an old journal stays readable as it is."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from importer.errors import JournalError, UsageError
from importer.journal.states import Entry
from importer.journal.store import Created, _load_entries, describe
from importer.models import Record, Status


@contextlib.contextmanager
def read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection, without the lock: never blocks a running import, nor is blocked.

    SQLite's WAL lets it read a consistent snapshot while a run writes. sqlite3 errors become
    :class:`~importer.errors.JournalError` (exit 2: nothing is sent by a reader).
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no journal here yet (run an import first, or pass --journal)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: {describe(exc)}") from None
    try:
        yield db
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: {describe(exc)}") from None
    finally:
        db.close()


def read_entries(path: str | Path) -> dict[str, Entry]:
    """Every entry of the journal at *path*, read without its lock; empty if there is none."""
    if not Path(path).exists():
        return {}
    with read_only(path) as db:
        return _load_entries(db)


def run_commands(path: str | Path) -> set[str]:
    """The commands that have run with the journal at *path* (none if there is no journal):
    ``revoke`` refuses a journal another command keeps, before taking its lock."""
    if not Path(path).exists():
        return set()
    with read_only(path) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone() is None:
            return set()  # an empty file: opening it makes it a journal
        return {name for (name,) in db.execute("SELECT DISTINCT command FROM runs")}


# -- readers for ``status`` (read-only, no lock) ----------------------------------------------
#: The states ``status`` lists, every one shown even at zero.
LISTED_STATES = (
    Status.CREATED, Status.REJECTED, Status.FAILED, Status.PENDING, Status.SENDING,
    Status.DELETING, Status.DELETED,
)  # fmt: skip
#: States that still need a run (or an undo) to finish.
UNFINISHED = (Status.FAILED, Status.PENDING, Status.SENDING, Status.DELETING)


def state_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Rows per journal state, every listed state present."""
    counts = {state.value: 0 for state in LISTED_STATES}
    counts.update(db.execute("SELECT status, count(*) FROM rows GROUP BY status"))
    return counts


class RunRow(NamedTuple):
    """The newest run, as recorded."""

    command: str
    source: str
    pid: int
    started: float
    ended: float | None
    outcome: str | None
    summary: dict[str, Any]
    plan: dict[str, int]


def last_run(db: sqlite3.Connection) -> RunRow | None:
    """The newest run the journal recorded, with its plan and summary (empty when missing)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    plan_column = "plan" if "plan" in have else "NULL"
    planned = "codes, to_send" if "to_send" in have else "NULL, NULL"
    row = db.execute(
        f"SELECT command, source, pid, started, ended, outcome, summary, {plan_column},"
        f" {planned} FROM runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    command, source, pid, started, ended, outcome, summary, plan, codes, to_send = row
    planned_dict: dict[str, int] = json.loads(plan) if plan else {}
    if not planned_dict and to_send is not None:  # journals from before the plan column
        planned_dict = {"codes": codes, "to_send": to_send, "fresh": to_send}
    return RunRow(
        command,
        source,
        pid,
        started,
        ended,
        outcome,
        json.loads(summary) if summary else {},
        planned_dict,
    )


def new_rows_since(db: sqlite3.Connection, started: float) -> int:
    """Rows the journal first saw at or after *started* (the rows a run reached first)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(rows)")}
    if "born" not in have:
        return 0
    (count,) = db.execute("SELECT count(*) FROM rows WHERE born >= ?", (started,)).fetchone()
    return int(count)


# -- readers for ``cards`` (read-only, no lock) -----------------------------------------------
def created_codes(db: sqlite3.Connection) -> list[Created]:
    """Every code the journal records as ``created`` (updated ones included: they stay
    ``created``, with the values Zype now holds), in row order, rows no longer in the sheet
    included. A code an undo is deleting (``deleting``) is not among them.

    ``content_title`` is "" for journals made before that column existed.
    """
    have = {row[1] for row in db.execute("PRAGMA table_info(rows)")}
    title = "content_title" if "content_title" in have else "''"
    created = "COALESCE(created_at, updated)" if "created_at" in have else "updated"
    rows = db.execute(
        f"SELECT key, row, code, fingerprint, status, api_id, {created}, {title}"
        " FROM rows WHERE status = 'created' ORDER BY row, key"
    )
    return [
        Created(Record.from_fingerprint(row, key, code, fp), api_id, status, at, name or "")
        for key, row, code, fp, status, api_id, at, name in rows
    ]


def bound_target(db: sqlite3.Connection) -> str | None:
    """The API the journal is tied to (``sandbox`` or a URL), or None if it never was."""
    row = db.execute("SELECT value FROM meta WHERE name = 'target'").fetchone()
    return None if row is None else str(row[0])
