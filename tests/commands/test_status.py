"""``status``: the journal read without its lock, while a run holds it and after."""

from __future__ import annotations

from pathlib import Path

import pytest

from importer.commands.status import journal_status
from importer.errors import JournalError, UsageError
from importer.journal import open_journal
from importer.journal import read_only as read_journal
from importer.models import Outcome, Record, Status

VIDEO = "5a1b2c3d4e5f60718293a4b5"


def test_status_of_a_run_in_progress_stopped_and_finished(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = open_journal(path)
    journal.start_run("run", "promo.csv")
    journal.note_plan({"codes": 12, "to_send": 10, "fresh": 10})
    batch = [Record(n, f"code:A{n}", f"A{n}", "2031-01-31", "video", VIDEO) for n in range(2, 6)]
    journal.mark_sending(batch)
    journal.record(batch[0], Outcome(Status.CREATED, api_id="f" * 24))
    journal.record(batch[1], Outcome(Status.FAILED, error="HTTP 503"))
    journal.flush()
    status = journal_status(path)
    assert status.counts == {
        "created": 1,
        "rejected": 0,
        "failed": 1,
        "pending": 0,
        "sending": 2,
        "deleting": 0,
        "deleted": 0,
    }
    assert status.unreached == 6  # 10 new rows to send, 4 reached
    assert status.left == 1 + 2 + 6
    assert status.last_run is not None
    assert (status.last_run.source, status.last_run.running) == ("promo.csv", True)
    assert (status.last_run.codes, status.last_run.to_send) == (12, 10)

    journal.record(batch[2], Outcome(Status.PENDING))
    journal.record(batch[3], Outcome(Status.PENDING))
    journal.finish_run("stopped", {"stopped": "interrupted by Terminated"})
    journal.close()
    status = journal_status(path)
    assert status.last_run is not None
    assert status.last_run.outcome == "stopped"
    assert status.last_run.stopped == "interrupted by Terminated"
    assert status.last_run.running is False
    assert status.left == 1 + 2 + 6

    journal = open_journal(path)
    journal.start_run("run", "promo.csv")
    journal.note_plan({"codes": 12, "to_send": 0, "fresh": 0})
    journal.finish_run("finished", {"stopped": None})
    journal.close()
    status = journal_status(path)
    assert status.last_run is not None
    assert (status.last_run.outcome, status.last_run.stopped) == ("finished", None)
    assert status.unreached == 0


def test_no_journal_or_not_a_journal_is_a_usage_error(tmp_path: Path) -> None:
    with (
        pytest.raises(UsageError, match="no journal here yet"),
        read_journal(tmp_path / "missing.journal"),
    ):
        pass
    path = tmp_path / "j.journal"
    path.write_bytes(b"this is not sqlite at all, just text" * 100)
    with pytest.raises(JournalError, match="not a zype-import journal"):
        journal_status(path)
