"""The journal: resume decisions, durable states, one run at a time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from importer.errors import JournalBusyError, UsageError
from importer.journal import Entry, Plan, open_journal, plan, read_journal
from importer.models import Outcome, Record, Status

VIDEO = "5a1b2c3d4e5f60718293a4b5"


def _record(code: str = "SPRING1", date: str = "2031-01-31", row: int = 2) -> Record:
    return Record(row, f"code:{code.upper()}", code, date, "video", VIDEO)


def _entry(status: Status, fingerprint: str, unsure: bool = False) -> Entry:
    return Entry(2, "SPRING1", fingerprint, status.value, "", "", "", None, 0, unsure)


SAME = _record().fingerprint
EDITED = _record(date="2032-01-01").fingerprint


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (None, Plan(send=True)),
        (_entry(Status.CREATED, SAME), Plan(send=False)),
        (_entry(Status.CREATED, EDITED), Plan(send=False)),
        (_entry(Status.REJECTED, SAME), Plan(send=False)),
        (_entry(Status.REJECTED, EDITED), Plan(send=True)),
        (_entry(Status.SENDING, SAME), Plan(send=True, unsure=True)),
        (_entry(Status.PENDING, SAME), Plan(send=True)),
        (_entry(Status.FAILED, SAME), Plan(send=True)),
        (_entry(Status.FAILED, SAME, unsure=True), Plan(send=True, unsure=True)),
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
        assert entries["code:B2"].unsure is True
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
    with pytest.raises(UsageError, match="not a zype-import journal"):
        open_journal(path)
    with (
        pytest.raises(UsageError, match="no journal here yet"),
        read_journal(tmp_path / "missing.journal"),
    ):
        pass
