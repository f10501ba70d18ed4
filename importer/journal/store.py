"""The journal's store: the SQLite file, its schema and lock, and :class:`Journal`, through which
every row's state is written (see the package docstring)."""

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

from importer.errors import JournalBusyError, JournalError, UsageError
from importer.journal.states import _NEW, Entry, transition
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
    updated REAL NOT NULL,
    born REAL,
    created_at REAL,
    updates INTEGER NOT NULL DEFAULT 0,
    content_title TEXT NOT NULL DEFAULT ''
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
    to_send INTEGER,
    plan TEXT
);
"""
#: Columns added after the first release, for journals made before them.
_ADDED_COLUMNS = {
    "runs": {"codes": "INTEGER", "to_send": "INTEGER", "plan": "TEXT"},
    "rows": {
        "born": "REAL",
        "created_at": "REAL",
        "updates": "INTEGER NOT NULL DEFAULT 0",
        # What the code unlocks as Zype titles it (``content_title``); "" for codes created
        # before this column, or when the answer had none (``cards`` then names the kind).
        "content_title": "TEXT NOT NULL DEFAULT ''",
    },
}

P = ParamSpec("P")
T = TypeVar("T")

#: The columns an :class:`Entry` is loaded from, in its field order.
_ENTRY_COLUMNS = "fingerprint, status, api_id, nice_code, error, http_status, attempts, unsure"
#: What loaded entries carry for the fields never loaded (see :class:`Entry`).
_NOT_LOADED = (0, "")
#: Rows fetched at a time when loading, so the raw rows of a big journal never all coexist.
_CHUNK = 65536


class Created(NamedTuple):
    """A code the journal records as created (or as being deleted), read from disk."""

    record: Record
    api_id: str
    status: str
    #: When it was created (epoch seconds, this machine's clock).
    created_at: float
    #: What it unlocks as Zype titles it ("" when unknown: created before the journal kept it).
    content_title: str = ""


def _guarded(method: Callable[P, T]) -> Callable[P, T]:
    """Translate :mod:`sqlite3` errors in a :class:`Journal` method into JournalError."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            journal = args[0]
            assert isinstance(journal, Journal)
            raise journal.failure(exc) from None

    return guarded


def describe(exc: sqlite3.Error) -> str:
    """An sqlite3 error as a cause a user can act on."""
    text = str(exc)
    if "disk is full" in text or "disk I/O error" in text:
        return f"the disk is full or failing ({text})"
    if "not a database" in text or "malformed" in text:
        return f"not a zype-import journal, or damaged ({text}); it was left as it is"
    if "readonly" in text or "read-only" in text:
        return f"cannot write to it ({text})"
    return text


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
        #: A request may have gone out since the journal was opened (decides the exit code).
        self.marked = False
        try:
            self.entries: dict[str, Entry] = _load_entries(connection)
        except sqlite3.Error as exc:
            raise self.failure(exc) from None
        self.run_id: int | None = None

    def failure(self, exc: sqlite3.Error) -> JournalError:
        """*exc* as the error the user sees: 3 once a request may have gone out, else 2."""
        after = "; every code sent so far was marked first: the same command finishes the job"
        return JournalError(
            f"{self.path}: {describe(exc)}" + (after if self.marked else ""),
            exit_code=3 if self.marked else 2,
        )

    # -- runs ------------------------------------------------------------------------------
    @_guarded
    def check_target(self, target: str) -> None:
        """Refuse an API other than the one this journal is tied to, whose codes it knows
        nothing about: a journal that says "created" against the sandbox must never make a
        run against the real API skip those rows."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'target'").fetchone()
        if row is not None and row[0] != target:
            raise UsageError(
                f"{self.path}: this journal belongs to imports into {row[0]}, not {target}; "
                "pass another --journal"
            )

    @_guarded
    def bind_target(self, target: str) -> None:
        """Tie the journal to *target* (see :meth:`check_target`), or refuse if tied to another.

        Called once the API has answered like Zype's, so that a run against a wrong URL, which
        stops before anything is written, leaves the journal free for the right one.
        """
        self.check_target(target)
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('target', ?)", (target,))

    @_guarded
    def start_run(self, command: str, source: str) -> None:
        """Record that a run started (its end is recorded by :meth:`finish_run`)."""
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO runs (pid, command, source, started) VALUES (?, ?, ?, ?)",
                (os.getpid(), command, source, time.time()),
            )
        self.run_id = cursor.lastrowid

    @_guarded
    def note_plan(self, plan: dict[str, int]) -> None:
        """Record what this run found and sets out to do (``rows``, ``codes``, ``invalid``,
        ``to_send``, ``fresh``: rows the journal has never seen).

        ``status`` uses it to show the whole last run, the rows it never reached included,
        which the journal otherwise knows nothing about.
        """
        with self._db:
            self._db.execute(
                "UPDATE runs SET codes = ?, to_send = ?, plan = ? WHERE id = ?",
                (plan.get("codes"), plan.get("to_send"), json.dumps(plan), self.run_id),
            )

    @_guarded
    def finish_run(self, outcome: str, summary: dict[str, Any]) -> None:
        """Commit the buffered outcomes and record how the run ended, in one commit."""
        with self._db:
            self._write_buffer()
            self._db.execute(
                "UPDATE runs SET ended = ?, outcome = ?, summary = ? WHERE id = ?",
                (time.time(), outcome, json.dumps(summary), self.run_id),
            )

    # -- rows ------------------------------------------------------------------------------
    @_guarded
    def generated_codes(self) -> dict[str, str]:
        """Codes generated for rows whose code still stands, by record key, so a rerun never
        generates a second one. A deleted row's code is gone: it gets a new one."""
        # Keys sort by prefix: a range of the primary key holds exactly the generated rows.
        return dict(
            self._db.execute(
                "SELECT key, code FROM rows WHERE key >= 'gen:' AND key < 'gen;'"
                " AND status != 'deleted'"
            )
        )

    @_guarded
    def generated_by_code(self) -> dict[str, str]:
        """The record key of each code this journal generated and still holds, by upper-cased
        code."""
        return {code.upper(): key for key, code in self.generated_codes().items() if code}

    def adopt_generated(
        self, records: Iterable[Record], generated: Mapping[str, str] | None = None
    ) -> list[tuple[Record, str]]:
        """Give each of *records* (rows with a code of their own and no entry yet) the entry of a
        code this journal generated, if it is the same code; return ``(record, source key)`` for
        each adopted.

        Marketing copies generated codes from the results file into the sheet (to print them,
        or to edit a row without getting a new code). Such a row is the generated row's code,
        not a new one: it keeps its state, so it is never sent again and an edit to it is
        reported like any other edit of a created code. One commit. `generated` is
        :meth:`generated_by_code`, when the caller has already read it.
        """
        if generated is None:
            generated = self.generated_by_code()
        if not generated:
            return []
        adopted = [(r, generated[r.code.upper()]) for r in records if r.code.upper() in generated]
        now = time.time()
        with self._db:
            for record, source in adopted:
                self._db.execute(
                    "INSERT INTO rows (key, row, code, fingerprint, status, api_id, nice_code,"
                    " error, http_status, attempts, unsure, updated, born, created_at, updates,"
                    " content_title)"
                    " SELECT ?, ?, ?, fingerprint, status, api_id, nice_code, error, http_status,"
                    " attempts, unsure, ?, ?, created_at, updates, content_title FROM rows"
                    " WHERE key = ?",
                    (record.key, record.row, record.code, now, now, source),
                )
                entry = self.entries[source]
                self.entries[record.key] = entry._replace(row=record.row, code=record.code)
        return adopted

    @_guarded
    def known_codes(self) -> set[str]:
        """Every code the journal holds, upper-cased: a new generated code must avoid them."""
        return set(map(operator.itemgetter(0), self._db.execute("SELECT upper(code) FROM rows")))

    @_guarded
    def created(self) -> list[Created]:
        """Every code the journal records as created or being deleted, in row order.

        Read from disk, so rows no longer in the sheet are included: ``undo`` and ``audit``
        answer for every code this journal created.
        """
        self.flush()
        rows = self._db.execute(
            "SELECT key, row, code, fingerprint, status, api_id, COALESCE(created_at, updated)"
            " FROM rows WHERE status IN ('created', 'deleting') ORDER BY row, key"
        )
        return [
            Created(Record.from_fingerprint(row, key, code, fp), api_id, status, at)
            for key, row, code, fp, status, api_id, at in rows
        ]

    @_guarded
    def store_generated(self, records: Iterable[Record]) -> None:
        """Write freshly generated codes as ``pending`` in one commit, before anything is sent."""
        with self._db:
            self._upsert(records, "generate", Status.PENDING)

    @_guarded
    def mark_sending(self, records: Sequence[Record]) -> None:
        """Mark a batch ``sending`` before any of it goes out.

        One commit holds the batch and the outcomes buffered so far: one fsync per batch.
        """
        with self._db:
            self._write_buffer()
            self._upsert(records, "send", Status.SENDING)
        self.marked = True

    @_guarded
    def mark_revoking(self, records: Sequence[Record], ids: Mapping[str, str]) -> None:
        """Mark a batch of listed codes ``deleting`` with the API id looked up for each (by
        key, in *ids*), in one commit before any DELETE of it goes out (``revoke``)."""
        with self._db:
            self._write_buffer()
            self._upsert(records, "revoke", Status.DELETING)
            pairs = [(ids[record.key], record.key) for record in records]
            self._db.executemany("UPDATE rows SET api_id = ? WHERE key = ?", pairs)
        for api_id, key in pairs:
            self.entries[key] = self.entries[key]._replace(api_id=api_id)
        self.marked = True

    @_guarded
    def mark_deleting(self, records: Sequence[Record]) -> None:
        """Mark a batch ``deleting`` before any DELETE of it goes out (one commit)."""
        with self._db:
            self._write_buffer()
            self._upsert(records, "delete", Status.DELETING)
        self.marked = True

    def record(self, record: Record, outcome: Outcome, operation: str = "create") -> None:
        """Buffer the outcome of *operation* on a marked row; committed with its group.

        The row's next state comes from :func:`transition`, which refuses a row never marked.
        An update's verdicts other than ``updated`` (kept, missing, refused) change nothing.
        """
        old = self.entries.get(record.key)
        state = transition(_NEW if old is None else old.status, f"{operation}:{outcome.status}")
        assert old is not None  # transition refuses every outcome for a row never marked
        if operation == "update" and outcome.status != Status.UPDATED:
            return
        if operation == "create":
            fingerprint, api_id, nice_code = record.fingerprint, outcome.api_id, outcome.nice_code
        else:
            fingerprint = outcome.fingerprint or old.fingerprint
            api_id, nice_code = old.api_id or outcome.api_id, outcome.nice_code or old.nice_code
        entry = Entry(
            fingerprint,
            state,
            api_id,
            nice_code,
            outcome.error,
            outcome.http_status,
            outcome.attempts,
            int(outcome.unsure or state in (Status.SENDING, Status.DELETING)),
            record.row,
            record.code,
        )
        self.entries[record.key] = entry
        now = time.time()
        # A create (again) and an update name what the code now unlocks; a delete keeps it.
        retitle = operation != "delete"
        self._buffer.append(
            (
                *entry[:8],
                now,
                state == Status.DELETED,
                now if state == Status.CREATED else None,
                int(outcome.status == Status.UPDATED),
                retitle,
                outcome.content_title,
                record.key,
            )
        )

    def flush_if_due(self, interval: float, batch_size: int) -> None:
        """Commit buffered outcomes once there are `batch_size` of them or `interval` passed."""
        due = time.monotonic() - self._last_flush >= interval
        if self._buffer and (due or len(self._buffer) >= batch_size):
            self.flush()

    @_guarded
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
                "UPDATE rows SET fingerprint = ?, status = ?, api_id = ?, nice_code = ?,"
                " error = ?, http_status = ?, attempts = ?, unsure = ?, updated = ?,"
                " created_at = CASE WHEN ? THEN NULL ELSE COALESCE(created_at, ?) END,"
                " updates = updates + ?,"
                " content_title = CASE WHEN ? THEN ? ELSE content_title END WHERE key = ?",
                self._buffer,
            )
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def _upsert(self, records: Iterable[Record], event: str, status: Status) -> None:
        """Set *records* to *status* (into the open transaction), keeping their last outcome.

        A row that may already be on the API (``sending``, or unsure) stays unsure.
        """
        now = time.time()
        params = []
        marking = status in (Status.SENDING, Status.DELETING)
        for record in records:
            old = self.entries.get(record.key)
            transition(_NEW if old is None else old.status, event)  # refuses a wrong mark
            unsure = int(marking or (old is not None and bool(old.unsure)))
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
                # A delete keeps what was created; a create (again) takes the row's values.
                fingerprint = old.fingerprint if event == "delete" else record.fingerprint
                new = old._replace(
                    row=record.row,
                    code=record.code,
                    fingerprint=fingerprint,
                    status=str(status),
                    unsure=unsure,
                )
            self.entries[record.key] = new
            params.append(
                (
                    record.key,
                    record.row,
                    record.code,
                    new.fingerprint,
                    str(status),
                    unsure,
                    now,
                    now,
                )
            )
        self._db.executemany(
            "INSERT INTO rows (key, row, code, fingerprint, status, unsure, updated, born)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET row = excluded.row,"
            " code = excluded.code, fingerprint = excluded.fingerprint,"
            " status = excluded.status, unsure = excluded.unsure, updated = excluded.updated",
            params,
        )

    def close(self) -> None:
        """Commit what is buffered, close the database and release the lock.

        The lock is released even when the last commit fails (a full disk): the error is
        raised after.
        """
        try:
            try:
                self.flush()
            finally:
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
    try:
        db = sqlite3.connect(path)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: {describe(exc)}") from None
    try:
        db.execute("PRAGMA busy_timeout = 5000")  # before WAL, which may need to wait
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.executescript(SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    except sqlite3.Error as exc:
        db.close()
        raise JournalError(f"{path}: {describe(exc)}") from None
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
