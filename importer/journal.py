"""The SQLite journal: every row's state before and after each request, so a rerun resumes.

Rows are keyed by :attr:`importer.models.Record.key`. A batch is marked ``sending`` in one commit
before any of it goes out, and outcomes are committed in groups, so after a crash (even
``kill -9``) only the rows still ``sending`` need looking up. WAL with ``synchronous=FULL`` by
default: a commit per batch costs one fsync, and FULL keeps the newest commits through a power
loss, which NORMAL does not.

One run at a time: an exclusive ``flock`` on ``<journal>.lock``, which the kernel releases when
the holder dies, so a lock file left by a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from importer.errors import JournalBusyError, UsageError
from importer.models import Outcome, Record, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    row INTEGER NOT NULL,
    code TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    api_id TEXT NOT NULL DEFAULT '',
    nice_code TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    http_status INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    unsure INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    command TEXT NOT NULL,
    source TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    outcome TEXT,
    summary TEXT
);
"""


class Entry(NamedTuple):
    """A row as the journal last recorded it."""

    row: int
    code: str
    fingerprint: str
    status: str
    api_id: str
    nice_code: str
    error: str
    http_status: int | None
    attempts: int
    unsure: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run does with a valid record, given the journal."""

    send: bool
    unsure: bool = False


def plan(record: Record, entry: Entry | None) -> Plan:
    """Decide from the journal whether *record* is sent, and whether it must be looked up first.

    Nothing is re-sent for a created code (an edited row is reported by the results file, not
    created again); a rejected row is retried only if its content changed; ``sending`` means a
    request may have reached the API before a crash, so the code is looked up first.
    """
    if entry is None:
        return Plan(send=True)
    if entry.status == Status.CREATED:
        return Plan(send=False)
    if entry.status == Status.REJECTED:
        return Plan(send=entry.fingerprint != record.fingerprint)
    if entry.status == Status.SENDING:
        return Plan(send=True, unsure=True)
    return Plan(send=True, unsure=entry.unsure)


class Journal:
    """An open, locked journal. Use :func:`open_journal`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self._db = connection
        self._lock_fd = lock_fd
        self._buffer: list[tuple[Any, ...]] = []
        self._last_flush = time.monotonic()
        self.entries: dict[str, Entry] = {
            key: Entry(*values[:-1], bool(values[-1]))
            for key, *values in self._db.execute(
                "SELECT key, row, code, fingerprint, status, api_id, nice_code, error,"
                " http_status, attempts, unsure FROM rows"
            )
        }
        self.run_id: int | None = None

    # -- runs ------------------------------------------------------------------------------
    def bind_target(self, target: str) -> None:
        """Tie the journal to one API; refuse another, whose codes it knows nothing about.

        A journal that says "created" against the sandbox must never make a run against the
        real API skip those rows.
        """
        row = self._db.execute("SELECT value FROM meta WHERE name = 'target'").fetchone()
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('target', ?)", (target,))
        elif row[0] != target:
            raise UsageError(
                f"{self.path}: this journal belongs to imports into {row[0]}, not {target}; "
                "pass another --journal"
            )

    def start_run(self, command: str, source: str) -> None:
        """Record that a run started (its end is recorded by :meth:`finish_run`)."""
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO runs (pid, command, source, started) VALUES (?, ?, ?, ?)",
                (os.getpid(), command, source, time.time()),
            )
        self.run_id = cursor.lastrowid

    def finish_run(self, outcome: str, summary: dict[str, Any]) -> None:
        """Record how the run ended."""
        self.flush()
        with self._db:
            self._db.execute(
                "UPDATE runs SET ended = ?, outcome = ?, summary = ? WHERE id = ?",
                (time.time(), outcome, json.dumps(summary), self.run_id),
            )

    # -- rows ------------------------------------------------------------------------------
    def generated_codes(self) -> dict[str, str]:
        """Codes already generated, by record key, so a rerun never generates a second one."""
        return {k: e.code for k, e in self.entries.items() if k.startswith("gen:")}

    def store_generated(self, records: Iterable[Record]) -> None:
        """Write freshly generated codes as ``pending``, before anything is sent."""
        self._upsert(records, Status.PENDING)

    def mark_sending(self, records: Sequence[Record]) -> None:
        """Mark a batch ``sending`` in one commit, before any of it goes out."""
        self.flush()
        self._upsert(records, Status.SENDING)

    def record(self, record: Record, outcome: Outcome) -> None:
        """Buffer an outcome; it is committed with its group (see :meth:`flush`)."""
        status = Status.SENDING if outcome.status == Status.SENDING else outcome.status
        entry = Entry(
            record.row,
            record.code,
            record.fingerprint,
            str(status),
            outcome.api_id,
            outcome.nice_code,
            outcome.error,
            outcome.http_status,
            outcome.attempts,
            outcome.unsure or status == Status.SENDING,
        )
        self.entries[record.key] = entry
        self._buffer.append((*entry[3:9], int(entry.unsure), time.time(), record.key))

    def flush_if_due(self, interval: float, batch_size: int) -> None:
        """Commit buffered outcomes once there are `batch_size` of them or `interval` passed."""
        due = time.monotonic() - self._last_flush >= interval
        if self._buffer and (due or len(self._buffer) >= batch_size):
            self.flush()

    def flush(self) -> None:
        """Commit every buffered outcome in one transaction."""
        if self._buffer:
            with self._db:
                self._db.executemany(
                    "UPDATE rows SET status = ?, api_id = ?, nice_code = ?, error = ?,"
                    " http_status = ?, attempts = ?, unsure = ?, updated = ? WHERE key = ?",
                    self._buffer,
                )
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def _upsert(self, records: Iterable[Record], status: Status) -> None:
        now = time.time()
        params = []
        for record in records:
            old = self.entries.get(record.key)
            unsure = bool(old and (old.unsure or old.status == Status.SENDING))
            unsure = unsure or status == Status.SENDING
            self.entries[record.key] = Entry(
                record.row,
                record.code,
                record.fingerprint,
                str(status),
                old.api_id if old else "",
                "",
                "",
                None,
                old.attempts if old else 0,
                unsure,
            )
            params.append(
                (record.key, record.row, record.code, record.fingerprint, str(status), now)
            )
        with self._db:
            self._db.executemany(
                "INSERT INTO rows (key, row, code, fingerprint, status, updated)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET row = excluded.row,"
                " code = excluded.code, fingerprint = excluded.fingerprint,"
                " status = excluded.status, updated = excluded.updated",
                params,
            )

    def close(self) -> None:
        """Commit what is buffered, close the database and release the lock."""
        try:
            self.flush()
            self._db.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA busy_timeout = 5000")  # before WAL, which may need to wait
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise UsageError(f"{path}: not a zype-import journal ({exc})") from None
    return db


def _lock(path: Path) -> int:
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(fd)
        raise JournalBusyError(
            f"{path}: another run holds this journal ({holder}); try again when it has finished"
        ) from None
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, started {started}".encode(), 0)
    return fd


def open_journal(path: str | Path, *, synchronous: str = "FULL") -> Journal:
    """Open (or create) the journal at *path* and take its lock, or raise JournalBusyError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _lock(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot open journal ({exc.strerror})") from None
    try:
        return Journal(path, _connect(path, synchronous), fd)
    except BaseException:
        os.close(fd)
        raise


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
