"""The SQLite journal: every row's state before and after each request, so a rerun resumes.

A row is known by :attr:`importer.models.Record.key` (its code, or for a generated code its
content and occurrence), so edits elsewhere in the sheet do not move it. Its states::

    (new) ──store_generated──> pending            generated codes, before anything is sent
    (new), pending, failed, ──mark_sending──> sending ──record──> created | rejected | failed
    rejected with new content                                      | pending | sending

``sending`` is committed for a whole batch, in one commit, before any of it goes out, so after a
crash (even ``kill -9``) only the rows still ``sending`` may have reached the API: the next run
looks them up before it sends anything (:func:`plan`). Outcomes are buffered and committed in
groups; an outcome lost in a crash leaves its row ``sending``, which is looked up again.

Durability: WAL with ``synchronous=FULL`` by default. Two commits must survive before a request
leaves: the generated code (else, after a power loss, the rerun makes a second code for the same
row and both end up created) and the ``sending`` mark (else the rerun believes the code was
never sent, posts it again and misreads the answer "already taken"). WAL with ``NORMAL`` keeps
every transaction through an application crash but may lose the newest commits on power loss;
``FULL`` fsyncs the WAL at every commit. Commits are per group (``journal.batch_size`` rows, or
``journal.flush_interval`` seconds of outcomes), so FULL costs one fsync per few hundred rows,
nothing beside the network. ``NORMAL`` stays available for disks where that still matters.

One run at a time: an exclusive ``flock`` on ``<journal>.lock``, which the kernel releases when
the holder dies, so a lock file left by a killed run never blocks the next one. The file names
the holder (pid and start time) for the message the second run prints.
"""

from __future__ import annotations

import fcntl
import functools
import gc
import itertools
import json
import operator
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
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
    summary TEXT,
    codes INTEGER,
    to_send INTEGER
);
"""
#: Columns added to ``runs`` after the first release, for journals made before them.
_RUN_COLUMNS = {"codes": "INTEGER", "to_send": "INTEGER"}

#: The columns an :class:`Entry` is loaded from, in its field order.
_ENTRY_COLUMNS = "fingerprint, status, api_id, nice_code, error, http_status, attempts, unsure"
#: What loaded entries carry for the fields never loaded (see :class:`Entry`).
_NOT_LOADED = (0, "")
#: Rows fetched at a time when loading, so the raw rows of a big journal never all coexist.
_CHUNK = 65536


class Entry(NamedTuple):
    """A row as the journal last recorded it: what resuming and the results file need.

    `unsure` is 0 or 1 as SQLite stores it: true means a request may have reached the API
    without an answer, so the code is looked up before it is sent again.

    `row` and `code` are filled only in entries written by this run; entries loaded from disk
    leave them at ``0`` and ``""``. Nothing needs them per row (the results file takes both from
    the record), and every column loaded costs a measurable share of opening a million-row
    journal. :meth:`Journal.generated_codes` and :meth:`Journal.known_codes` read codes from disk.
    """

    fingerprint: str
    status: str
    api_id: str
    nice_code: str
    error: str
    http_status: int | None
    attempts: int
    unsure: int
    row: int = 0
    code: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run does with a valid record, given the journal."""

    send: bool
    unsure: bool = False


#: The three possible plans, built once: :func:`plan` runs for every row of every rerun.
SKIP = Plan(send=False)
SEND = Plan(send=True)
LOOK_UP_FIRST = Plan(send=True, unsure=True)


def plan(record: Record, entry: Entry | None) -> Plan:
    """Decide from the journal whether *record* is sent, and whether it is looked up first.

    - ``created``: never sent again; if the row was edited since, the results file reports it
      (``changed-after-create``), nothing is created again.
    - ``rejected``: sent again only if its content changed, and looked up first: the rejection
      may have been "already taken" for a code that now matches the row.
    - ``sending`` (a crash while a request was out) or an unsure ``failed``/``pending`` row:
      looked up first, sent only if the API does not hold it.
    - ``pending``, ``failed`` or unknown: sent.
    """
    if entry is None:
        return SEND
    status = entry.status
    if status == Status.CREATED:
        return SKIP
    if status == Status.REJECTED:
        return SKIP if entry.fingerprint == record.fingerprint else LOOK_UP_FIRST
    if status == Status.SENDING or entry.unsure:
        return LOOK_UP_FIRST
    return SEND


class Journal:
    """An open, locked journal. Use :func:`open_journal`.

    :attr:`entries` maps every key the journal knows to its :class:`Entry`; it is kept equal to
    what the database will hold once the buffered outcomes are flushed.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self._db = connection
        self._lock_fd = lock_fd
        self._buffer: list[tuple[Any, ...]] = []
        self._last_flush = time.monotonic()
        self.entries: dict[str, Entry] = _load_entries(connection)
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

    def note_plan(self, codes: int, to_send: int) -> None:
        """Record how many codes the sheet holds and how many this run sets out to send.

        ``status`` uses it to count the rows a killed run never reached, which the journal
        otherwise knows nothing about.
        """
        with self._db:
            self._db.execute(
                "UPDATE runs SET codes = ?, to_send = ? WHERE id = ?", (codes, to_send, self.run_id)
            )

    def finish_run(self, outcome: str, summary: dict[str, Any]) -> None:
        """Commit the buffered outcomes and record how the run ended, in one commit."""
        with self._db:
            self._write_buffer()
            self._db.execute(
                "UPDATE runs SET ended = ?, outcome = ?, summary = ? WHERE id = ?",
                (time.time(), outcome, json.dumps(summary), self.run_id),
            )

    # -- rows ------------------------------------------------------------------------------
    def generated_codes(self) -> dict[str, str]:
        """Codes already generated, by record key, so a rerun never generates a second one."""
        # Keys sort by prefix: a range of the primary key holds exactly the generated rows.
        return dict(
            self._db.execute("SELECT key, code FROM rows WHERE key >= 'gen:' AND key < 'gen;'")
        )

    def adopt_generated(self, records: Iterable[Record]) -> int:
        """Give each of *records* (rows with a code of their own and no entry yet) the entry of a
        code this journal generated, if it is the same code; return how many were adopted.

        Marketing copies generated codes from the results file into the sheet (to print them,
        or to edit a row without getting a new code). Such a row is the generated row's code,
        not a new one: it keeps its state, so it is never sent again and an edit to it is
        reported like any other edit of a created code. One commit.
        """
        generated = {code.upper(): key for key, code in self.generated_codes().items() if code}
        if not generated:
            return 0
        adopted = [(r, generated[r.code.upper()]) for r in records if r.code.upper() in generated]
        now = time.time()
        with self._db:
            for record, source in adopted:
                self._db.execute(
                    "INSERT INTO rows (key, row, code, fingerprint, status, api_id, nice_code,"
                    " error, http_status, attempts, unsure, updated) SELECT ?, ?, ?, fingerprint,"
                    " status, api_id, nice_code, error, http_status, attempts, unsure, ?"
                    " FROM rows WHERE key = ?",
                    (record.key, record.row, record.code, now, source),
                )
                entry = self.entries[source]
                self.entries[record.key] = entry._replace(row=record.row, code=record.code)
        return len(adopted)

    def known_codes(self) -> set[str]:
        """Every code the journal holds, upper-cased: a new generated code must avoid them."""
        return set(map(operator.itemgetter(0), self._db.execute("SELECT upper(code) FROM rows")))

    def store_generated(self, records: Iterable[Record]) -> None:
        """Write freshly generated codes as ``pending`` in one commit, before anything is sent."""
        with self._db:
            self._upsert(records, Status.PENDING)

    def mark_sending(self, records: Sequence[Record]) -> None:
        """Mark a batch ``sending`` before any of it goes out.

        One commit holds the batch and the outcomes buffered so far: one fsync per batch.
        """
        with self._db:
            self._write_buffer()
            self._upsert(records, Status.SENDING)

    def record(self, record: Record, outcome: Outcome) -> None:
        """Buffer an outcome; it is committed with its group (see :meth:`flush`)."""
        entry = Entry(
            record.fingerprint,
            str(outcome.status),
            outcome.api_id,
            outcome.nice_code,
            outcome.error,
            outcome.http_status,
            outcome.attempts,
            int(outcome.unsure or outcome.status == Status.SENDING),
            record.row,
            record.code,
        )
        self.entries[record.key] = entry
        # Only the outcome changes: the row, code and fingerprint were written when marked.
        self._buffer.append((*entry[1:8], time.time(), record.key))

    def flush_if_due(self, interval: float, batch_size: int) -> None:
        """Commit buffered outcomes once there are `batch_size` of them or `interval` passed."""
        due = time.monotonic() - self._last_flush >= interval
        if self._buffer and (due or len(self._buffer) >= batch_size):
            self.flush()

    def flush(self) -> None:
        """Commit every buffered outcome in one transaction."""
        if self._buffer:
            with self._db:
                self._write_buffer()
        self._last_flush = time.monotonic()

    def _write_buffer(self) -> None:
        """Write the buffered outcomes into the open transaction."""
        if self._buffer:
            self._db.executemany(
                "UPDATE rows SET status = ?, api_id = ?, nice_code = ?, error = ?,"
                " http_status = ?, attempts = ?, unsure = ?, updated = ? WHERE key = ?",
                self._buffer,
            )
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def _upsert(self, records: Iterable[Record], status: Status) -> None:
        """Set *records* to *status* (into the open transaction), keeping their last outcome.

        A row that may already be on the API (``sending``, or unsure) stays unsure.
        """
        now = time.time()
        params = []
        sending = status == Status.SENDING
        for record in records:
            old = self.entries.get(record.key)
            unsure = int(sending or (old is not None and bool(old.unsure)))
            if old is None:
                new = Entry(
                    record.fingerprint,
                    str(status),
                    "",
                    "",
                    "",
                    None,
                    0,
                    unsure,
                    record.row,
                    record.code,
                )
            else:
                new = old._replace(
                    row=record.row,
                    code=record.code,
                    fingerprint=record.fingerprint,
                    status=str(status),
                    unsure=unsure,
                )
            self.entries[record.key] = new
            params.append(
                (record.key, record.row, record.code, record.fingerprint, str(status), unsure, now)
            )
        self._db.executemany(
            "INSERT INTO rows (key, row, code, fingerprint, status, unsure, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET row = excluded.row,"
            " code = excluded.code, fingerprint = excluded.fingerprint,"
            " status = excluded.status, unsure = excluded.unsure, updated = excluded.updated",
            params,
        )

    def close(self) -> None:
        """Commit what is buffered, close the database and release the lock."""
        try:
            self.flush()
            self._db.close()
        finally:
            if self._lock_fd is not None:
                os.ftruncate(self._lock_fd, 0)  # no holder named any more
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None


def _load_entries(db: sqlite3.Connection) -> dict[str, Entry]:
    """Every row as ``{key: Entry}``, built without a Python-level step per row.

    Every rerun opens the whole journal (a million rows for a million-row sheet), so the rows
    become entries through C-level ``map``s, with the cyclic collector paused meanwhile: it
    would otherwise walk the growing heap again and again while the entries (strings and
    numbers only, so they can form no cycle) are made.
    """
    cursor = db.execute(f"SELECT key, {_ENTRY_COLUMNS} FROM rows")
    make = functools.partial(tuple.__new__, Entry)
    key, fields = operator.itemgetter(0), operator.itemgetter(slice(1, None))
    not_loaded = itertools.repeat(_NOT_LOADED)
    entries: dict[str, Entry] = {}
    paused = gc.isenabled()
    gc.disable()
    try:
        while chunk := cursor.fetchmany(_CHUNK):
            values = map(operator.add, map(fields, chunk), not_loaded)
            entries.update(zip(map(key, chunk), map(make, values), strict=True))
    finally:
        if paused:
            gc.enable()
    return entries


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA busy_timeout = 5000")  # before WAL, which may need to wait
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.executescript(SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        for name, kind in _RUN_COLUMNS.items():
            if name not in have:
                db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise UsageError(f"{path}: not a zype-import journal ({exc})") from None
    return db


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _lock(path: Path) -> int:
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise JournalBusyError(
            f"{path}: another run holds this journal ({holder}); try again when it has finished"
        ) from None
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, started {started}".encode(), 0)
    return fd


def _read_holder(fd: int) -> str:
    """What the holder wrote into the lock file; it may be a moment late in writing it."""
    for _ in range(20):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return text
        time.sleep(0.01)
    return "holder unknown"


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
