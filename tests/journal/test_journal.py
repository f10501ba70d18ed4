"""The journal: resume decisions, durable states, one run at a time."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from importer.commands.status import journal_status
from importer.errors import JournalBusyError, JournalError, UsageError
from importer.journal import (
    LOOK_UP_FIRST,
    SCHEMA,
    SEND,
    SKIP,
    Entry,
    Plan,
    created_codes,
    open_journal,
    plan,
    transition,
)
from importer.journal import read_only as read_journal
from importer.models import Outcome, Record, Status

VIDEO = "5a1b2c3d4e5f60718293a4b5"


def _record(code: str = "SPRING1", date: str = "2031-01-31", row: int = 2) -> Record:
    return Record(row, f"code:{code.upper()}", code, date, "video", VIDEO)


def _entry(status: Status, fingerprint: str, unsure: bool = False) -> Entry:
    return Entry(fingerprint, status.value, "", "", "", None, 0, int(unsure))


SAME = _record().fingerprint
EDITED = _record(date="2032-01-01").fingerprint


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (None, SEND),
        # created: never again, even when edited (the results file reports the edit)
        (_entry(Status.CREATED, SAME), SKIP),
        (_entry(Status.CREATED, EDITED), SKIP),
        # rejected: only once its content changed, and then looked up first
        (_entry(Status.REJECTED, SAME), SKIP),
        (_entry(Status.REJECTED, EDITED), LOOK_UP_FIRST),
        # a crash while it was out, or an answer that never came: look it up first
        (_entry(Status.SENDING, SAME), LOOK_UP_FIRST),
        (_entry(Status.SENDING, EDITED), LOOK_UP_FIRST),
        (_entry(Status.PENDING, SAME), SEND),
        (_entry(Status.PENDING, SAME, unsure=True), LOOK_UP_FIRST),
        (_entry(Status.FAILED, SAME), SEND),
        (_entry(Status.FAILED, EDITED), SEND),
        (_entry(Status.FAILED, SAME, unsure=True), LOOK_UP_FIRST),
    ],
)
def test_plan_table(entry: Entry | None, expected: Plan) -> None:
    assert plan(_record(), entry) == expected


def test_states_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    first, second, third = _record("A1"), _record("B2", row=3), _record("C3", row=4)
    journal.mark_sending([first, second, third])
    journal.record(first, Outcome(Status.CREATED, api_id="a" * 24, nice_code="A1", attempts=1))
    journal.record(second, Outcome(Status.FAILED, error="HTTP 503", attempts=6, unsure=True))
    journal.close()

    journal = open_journal(path)
    try:
        entries = journal.entries
        assert entries["code:A1"].status == "created"
        assert entries["code:A1"].api_id == "a" * 24
        assert entries["code:B2"].status == "failed"
        assert entries["code:B2"].unsure
        assert entries["code:C3"].status == "sending"
        assert plan(third, entries["code:C3"]) == Plan(send=True, unsure=True)
    finally:
        journal.close()


def test_outcomes_are_buffered_until_flushed(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    record = _record()
    journal.mark_sending([record])
    journal.record(record, Outcome(Status.CREATED, api_id="b" * 24))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT status FROM rows").fetchone() == ("sending",)
    journal.flush_if_due(interval=3600, batch_size=1)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT status FROM rows").fetchone() == ("created",)
    journal.close()


def test_generated_codes_are_kept_by_key(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    generated = Record(
        4, "gen:0123456789abcdef:0:0", "KQ7MZ3", "2031-01-31", "video", VIDEO, generated=True
    )
    journal.store_generated([generated, _record()])
    journal.close()
    journal = open_journal(path)
    assert journal.generated_codes() == {"gen:0123456789abcdef:0:0": "KQ7MZ3"}
    journal.close()


def test_a_generated_code_given_in_the_sheet_adopts_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    generated = Record(
        4, "gen:0123456789abcdef:0:0", "KQ7MZ3", "2031-01-31", "video", VIDEO, generated=True
    )
    journal.mark_sending([generated])
    journal.record(generated, Outcome(Status.CREATED, api_id="e" * 24, nice_code="KQ7-MZ3"))
    journal.flush()
    pasted, other = _record("kq7mz3", row=7), _record("OTHER1", row=8)
    assert [r for r, _ in journal.adopt_generated([pasted, other])] == [pasted]
    journal.close()
    journal = open_journal(path)  # written through, not only in memory
    entry = journal.entries[pasted.key]
    assert (entry.status, entry.api_id, entry.fingerprint) == ("created", "e" * 24, SAME)
    assert other.key not in journal.entries
    assert plan(pasted, entry) == SKIP
    journal.close()


def test_journal_is_bound_to_one_api(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.journal")
    journal.bind_target("sandbox")
    journal.bind_target("sandbox")
    with pytest.raises(UsageError, match="belongs to imports into sandbox"):
        journal.bind_target("https://api.zype.com")
    journal.close()


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    try:
        with pytest.raises(JournalBusyError, match=r"another run holds this journal \(pid \d+"):
            open_journal(path)
    finally:
        journal.close()
    open_journal(path).close()  # free again once released


def test_lock_of_a_killed_holder_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from importer.journal import open_journal; "
            f"j = open_journal({str(path)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JournalBusyError, match=f"pid {holder.pid}"):
            open_journal(path)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert path.with_name(path.name + ".lock").exists()  # the file stays; it is not the lock
    deadline = time.monotonic() + 5
    while True:
        try:
            open_journal(path).close()
            break
        except JournalBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_run_history_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    journal.start_run("run", "promo.csv")
    journal.finish_run("finished", {"rows": 3})
    journal.close()
    with read_journal(path) as db:
        row = db.execute("SELECT command, source, outcome, summary FROM runs").fetchone()
    assert row == ("run", "promo.csv", "finished", '{"rows": 3}')


def test_not_a_journal_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    path.write_bytes(b"this is not sqlite at all, just text" * 100)
    with pytest.raises(JournalError, match="not a zype-import journal") as raised:
        open_journal(path)
    assert raised.value.exit_code == 2
    assert path.read_bytes() == b"this is not sqlite at all, just text" * 100  # left as it was


def _pragma(path: Path, name: str) -> object:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.mark.parametrize(("setting", "level"), [("FULL", 2), ("NORMAL", 1)])
def test_wal_with_the_configured_synchronous(tmp_path: Path, setting: str, level: int) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path, synchronous=setting)
    try:
        assert journal._db.execute("PRAGMA synchronous").fetchone() == (level,)
        assert _pragma(path, "journal_mode") == "wal"
    finally:
        journal.close()


def test_a_batch_is_marked_in_one_commit_with_the_outcomes_before_it(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    first = [_record(f"A{n}", row=n) for n in range(2, 7)]
    second = [_record(f"B{n}", row=n) for n in range(7, 12)]
    journal.mark_sending(first)
    for record in first:
        journal.record(record, Outcome(Status.CREATED, api_id="c" * 24, attempts=1))
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    journal.mark_sending(second)
    journal._db.set_trace_callback(None)
    assert sum(s.strip().upper() == "COMMIT" for s in statements) == 1
    with contextlib.closing(sqlite3.connect(path)) as db:
        states = dict(db.execute("SELECT code, status FROM rows"))
    assert states == {**dict.fromkeys((r.code for r in first), "created")} | dict.fromkeys(
        (r.code for r in second), "sending"
    )
    journal.close()


def test_kill_9_keeps_generated_codes_and_sending_marks(tmp_path: Path) -> None:
    """What a killed run leaves: its generated codes, and `sending` for the whole batch,
    including the row whose `created` outcome was still in the buffer."""
    path = tmp_path / "j.journal"
    script = f"""
import os, signal
from importer.journal import open_journal
from importer.models import Outcome, Record, Status
gen = Record(2, "gen:0123456789abcdef:0:0", "KQ7MZ3", "2031-01-31", "video", {VIDEO!r}, True)
own = Record(3, "code:OWN1", "OWN1", "2031-01-31", "video", {VIDEO!r})
journal = open_journal({str(path)!r})
journal.start_run("run", "sheet.csv")
journal.store_generated([gen])
journal.mark_sending([gen, own])
journal.record(gen, Outcome(Status.CREATED, api_id="d" * 24, attempts=1))
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=30)
    assert done.returncode == -9
    journal = open_journal(path)  # the lock died with the process
    try:
        assert journal.generated_codes() == {"gen:0123456789abcdef:0:0": "KQ7MZ3"}
        assert {k: e.status for k, e in journal.entries.items()} == {
            "gen:0123456789abcdef:0:0": "sending",
            "code:OWN1": "sending",
        }
        assert all(plan(_record(), e) == LOOK_UP_FIRST for e in journal.entries.values())
    finally:
        journal.close()
    status = journal_status(path)
    assert status.last_run is not None
    assert (status.last_run.ended, status.last_run.running) == (None, False)


def test_loaded_entries_hold_what_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    records = [_record("A1"), _record("B2", row=3), _record("C3", row=4)]
    journal.mark_sending(records)
    journal.record(records[0], Outcome(Status.CREATED, "e" * 24, "A1-X", "", 201, 2))
    journal.record(records[1], Outcome(Status.REJECTED, error="Video not found", http_status=422))
    journal.record(records[2], Outcome(Status.PENDING, unsure=True))
    written = dict(journal.entries)
    journal.close()
    journal = open_journal(path)
    try:
        # Loaded entries leave row and code out (see Entry); everything else round-trips.
        assert journal.entries == {k: e._replace(row=0, code="") for k, e in written.items()}
        assert journal.entries["code:A1"][:8] == (SAME, "created", "e" * 24, "A1-X", "", 201, 2, 0)
        assert journal.known_codes() == {"A1", "B2", "C3"}
    finally:
        journal.close()


def test_marking_keeps_a_row_unsure_until_an_answer_settles_it(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    record = _record()
    journal.mark_sending([record])
    journal.record(record, Outcome(Status.FAILED, error="timeout", attempts=6, unsure=True))
    journal.mark_sending([record])  # the next run sends it again ...
    journal.record(record, Outcome(Status.PENDING, unsure=True))  # ... but is stopped first
    journal.close()
    with read_journal(path) as db:
        assert db.execute("SELECT status, unsure FROM rows").fetchall() == [("pending", 1)]
    journal = open_journal(path)
    assert plan(record, journal.entries[record.key]) == LOOK_UP_FIRST
    journal.close()


def test_a_journal_from_before_run_planning_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    first_schema = SCHEMA.replace(
        "summary TEXT,\n    codes INTEGER,\n    to_send INTEGER", "summary TEXT"
    )
    assert "to_send" not in first_schema
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(first_schema)
        db.execute("INSERT INTO runs (pid, command, source, started) VALUES (1, 'run', 'a', 0)")
        db.commit()
    status = journal_status(path)  # read-only: read as it is
    assert status.last_run is not None
    assert (status.last_run.to_send, status.unreached) == (None, 0)
    journal = open_journal(path)
    journal.start_run("run", "b.csv")
    journal.note_plan({"codes": 1, "to_send": 1, "fresh": 1})
    journal.close()
    assert journal_status(path).unreached == 1


def test_busy_message_names_pid_and_start_time(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    try:
        pattern = rf"another run holds this journal \(pid {os.getpid()}, started \d{{4}}-\d\d-\d\d "
        with pytest.raises(JournalBusyError, match=pattern):
            open_journal(path)
    finally:
        journal.close()
    assert path.with_name(path.name + ".lock").read_text() == ""  # released: nobody named


# --- transitions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        ("", "send", "sending"),
        ("", "generate", "pending"),
        ("deleted", "generate", "pending"),  # a deleted generated row gets a new code
        ("rejected", "generate", "pending"),  # a generated code someone else holds
        ("failed", "send", "sending"),
        ("deleted", "send", "sending"),  # a run after an undo creates it again
        ("sending", "create:created", "created"),
        ("sending", "create:sending", "sending"),
        ("created", "delete", "deleting"),
        ("deleting", "delete", "deleting"),
        ("deleting", "delete:deleted", "deleted"),
        ("deleting", "delete:failed", "deleting"),  # may have been applied: read again
        ("deleting", "delete:pending", "created"),  # never sent
        ("deleting", "delete:kept", "created"),
        ("deleting", "delete:rejected", "created"),
        ("created", "update:updated", "created"),
        ("created", "update:kept", "created"),
        ("", "revoke", "deleting"),  # a listed code, marked with its looked-up id
        ("found", "revoke", "deleting"),
        ("deleting", "revoke", "deleting"),  # killed: marked again before the DELETE
        ("deleting", "revoke:deleted", "deleted"),
        ("deleting", "revoke:kept", "found"),
        ("deleting", "revoke:pending", "found"),
        ("deleting", "revoke:rejected", "found"),
        ("deleting", "revoke:failed", "deleting"),  # may have been applied: read again
        ("deleting", "revoke:sending", "deleting"),
    ],
)
def test_transition(state: str, event: str, after: str) -> None:
    assert transition(state, event) == after


@pytest.mark.parametrize(
    ("state", "event"),
    [
        ("", "create:created"),  # an outcome for a row never marked
        ("created", "send"),  # a created code is never sent again
        ("pending", "delete"),  # only created codes are deleted
        ("deleted", "delete:deleted"),
        ("sending", "delete:deleted"),
        ("created", "generate"),  # a created code keeps its code
        ("deleted", "revoke"),  # a revoked code is never sent again
        ("created", "revoke"),  # revoke never takes another command's row
        ("found", "delete"),
    ],
)
def test_transitions_the_journal_refuses(state: str, event: str) -> None:
    with pytest.raises(JournalError, match="cannot take"):
        transition(state, event)


def test_record_refuses_a_row_never_marked(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.journal")
    try:
        with pytest.raises(JournalError):
            journal.record(_record("NEVER"), Outcome(Status.CREATED, api_id="f" * 24))
    finally:
        journal.close()


def test_a_deleted_row_is_created_again_and_its_generated_code_renewed(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.journal")
    try:
        generated = Record(2, "gen:abc:0:0", "GEN1", "2031-01-31", "video", VIDEO, True)
        journal.store_generated([generated])
        journal.mark_sending([generated])
        journal.record(generated, Outcome(Status.CREATED, api_id="f" * 24))
        journal.flush()
        assert journal.generated_codes() == {"gen:abc:0:0": "GEN1"}
        [held] = journal.created()
        assert (held.record, held.api_id, held.status) == (generated, "f" * 24, "created")
        journal.mark_deleting([generated])
        journal.record(generated, Outcome(Status.DELETED, api_id="f" * 24), "delete")
        journal.flush()
        assert journal.created() == []
        assert journal.generated_codes() == {}  # a new code next time
        assert plan(generated, journal.entries[generated.key]).send
        assert journal.entries[generated.key].api_id == "f" * 24  # the deleted id stays shown
    finally:
        journal.close()


def test_a_full_disk_mid_run_is_a_journal_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    try:
        journal.mark_sending([_record("A")])
        # The database may not grow any more: what a full disk looks like to SQLite.
        (pages,) = journal._db.execute("PRAGMA page_count").fetchone()
        journal._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(JournalError) as raised:
            journal.mark_sending([_record(f"B{n:05d}" * 10, row=n + 3) for n in range(2000)])
        assert str(path) in str(raised.value)
        assert "disk is full" in str(raised.value)
        assert raised.value.exit_code == 3  # a request may have gone out since it opened
    finally:
        with contextlib.suppress(JournalError):
            journal.close()


def test_a_revoke_mark_stores_the_looked_up_id_in_its_commit(tmp_path: Path) -> None:
    path = tmp_path / "list.revoke.journal"
    listed = [Record(n + 2, f"code:LEAK{n}", f"LEAK{n}", "", "", "") for n in range(3)]
    ids = {r.key: f"{n:024x}" for n, r in enumerate(listed)}
    journal = open_journal(path)
    try:
        journal.mark_revoking(listed, ids)
        journal.record(listed[0], Outcome(Status.DELETED, http_status=204), "revoke")
        # What a kill -9 now leaves on disk: the marks and their ids, not the buffered outcome.
        with sqlite3.connect(path) as db:
            rows = sorted(db.execute("SELECT key, status, api_id FROM rows"))
        assert rows == [(r.key, "deleting", ids[r.key]) for r in listed]
        journal.record(listed[1], Outcome(Status.KEPT), "revoke")
    finally:
        journal.close()
    reopened = open_journal(path)
    try:
        assert reopened.entries[listed[0].key].status == "deleted"
        assert reopened.entries[listed[0].key].api_id == ids[listed[0].key]
        assert reopened.entries[listed[1].key].status == "found"
        assert reopened.entries[listed[2].key].status == "deleting"
        with pytest.raises(JournalError):
            reopened.mark_revoking([listed[0]], ids)  # revoked: never marked again
    finally:
        reopened.close()


def _created(path: Path) -> list[tuple[str, str]]:
    with read_journal(path) as db:
        return [(c.record.code, c.content_title) for c in created_codes(db)]


def test_the_title_zype_gives_a_code_is_kept_and_follows_updates(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    first, second = _record("A1", row=2), _record("B2", row=3)
    journal.mark_sending([first, second])
    journal.record(first, Outcome(Status.CREATED, api_id="a" * 24, content_title="The Movie"))
    journal.record(second, Outcome(Status.CREATED, api_id="b" * 24))  # an answer without one
    journal.flush()
    assert _created(path) == [("A1", "The Movie"), ("B2", "")]
    moved = _record("A1", date="2032-01-31", row=2)
    update = Outcome(
        Status.UPDATED, api_id="a" * 24, fingerprint=moved.fingerprint, content_title="Sequel"
    )
    journal.record(moved, update, "update")
    journal.record(first, Outcome(Status.KEPT, api_id="a" * 24), "update")  # changes nothing
    journal.mark_deleting([second])
    journal.record(second, Outcome(Status.KEPT, api_id="b" * 24), "delete")  # back to created
    journal.close()
    assert _created(path) == [("A1", "Sequel"), ("B2", "")]


def test_a_journal_from_before_content_titles_is_read_as_it_is_then_migrated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.journal"
    old_schema = SCHEMA.replace(",\n    content_title TEXT NOT NULL DEFAULT ''", "")
    assert "content_title" not in old_schema
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO rows (key, row, code, fingerprint, status, api_id, updated)"
            f" VALUES ('code:OLD1', 2, 'OLD1', '2031-01-31|video|{VIDEO}', 'created', ?, 0)",
            ("c" * 24,),
        )
        db.commit()
    assert _created(path) == [("OLD1", "")]  # read-only: no column added, none needed
    with contextlib.closing(sqlite3.connect(path)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(rows)")}
    assert "content_title" not in columns
    journal = open_journal(path)  # a run migrates it
    new = _record("NEW1", row=3)
    journal.mark_sending([new])
    journal.record(new, Outcome(Status.CREATED, api_id="d" * 24, content_title="A Film"))
    journal.close()
    assert _created(path) == [("OLD1", ""), ("NEW1", "A Film")]
