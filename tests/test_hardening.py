"""Faults a careful review found, end to end: a journal on a full disk or that is not a journal,
a run that crashes, generated codes that clash or are pasted twice. Each test failed before the
fix it covers."""

from __future__ import annotations

import csv
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from importer.cli import main
from tests.servers import KEY, sandbox_in_thread

ROOT = Path(__file__).resolve().parent.parent
VIDEO = "5a1b2c3d4e5f60718293a4b5"
OTHER = "6b2c3d4e5f60718293a4b5c6"


def lines(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def codes_sheet(path: Path, rows: int) -> Path:
    body = [f"HARD-{n:05d},2031-06-30,{VIDEO}" for n in range(rows)]
    path.write_text("Promo Code,Expires,Video ID\n" + "\n".join(body) + "\n")
    return path


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)


def test_a_file_that_is_not_a_journal_is_one_line_exit_2_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = codes_sheet(tmp_path / "s.csv", 3)
    journal = tmp_path / "s.results.journal"
    journal.write_bytes(b"these are someone's notes, not a database\n" * 50)
    before = journal.read_bytes()
    assert main(["run", str(source), "--sandbox", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(journal) in err
    assert "not a zype-import journal" in err
    assert journal.read_bytes() == before


def _limited(limit: int) -> None:
    """In the child: writing past `limit` bytes fails with EFBIG (a file size limit)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
def test_a_full_disk_mid_run_stops_with_one_line_and_the_rerun_creates_each_code_once(
    tmp_path: Path,
) -> None:
    source = codes_sheet(tmp_path / "big.csv", 3000)
    env = {**os.environ, "ZYPE_API_KEY": KEY, "PYTHONDONTWRITEBYTECODE": "1"}
    with sandbox_in_thread() as api:
        command = [
            sys.executable, "-m", "importer", "run", str(source), "--api-url", api.url,
            "--rate", "2000", "--concurrency", "8", "--no-progress",
        ]  # fmt: skip
        full = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True,
            preexec_fn=lambda: _limited(400_000),
        )  # fmt: skip
        assert full.returncode == 3, full.stderr[-2000:]
        assert "Traceback" not in full.stderr
        assert "big.results.journal" in full.stderr
        assert "disk is full" in full.stderr
        assert 0 < api.state.posts < 3000
        again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-2000:]
        assert len(api.state.created_log) == len(set(api.state.created_log)) == 3000


def test_a_crashed_run_is_recorded_as_crashed_not_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importer.commands.run

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(importer.commands.run, "build_lines", broken)
    source = codes_sheet(tmp_path / "c.csv", 3)
    assert main(["run", str(source), "--sandbox", "--no-progress"]) == 3  # internal error
    with sqlite3.connect(tmp_path / "c.results.journal") as db:
        (outcome,) = db.execute("SELECT outcome FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert outcome == "crashed"


def test_a_generated_code_someone_else_holds_gets_a_new_one(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("codes:\n  alphabet: ABCDEFGHJK\n  length: 1\n  prefix: GEN\n")
    source = tmp_path / "g.csv"
    source.write_text(f"Promo Code,Expires,Video ID,Qty\n,2031-06-30,{VIDEO},1\n")
    with sandbox_in_thread() as api:
        # Three of the ten possible codes are other owners' already, for another video.
        theirs = {"GENA": "e" * 24, "GENB": "d" * 24, "GENC": "c" * 24}
        for code, api_id in theirs.items():
            api.state.add({**_other(code), "_id": api_id})
        command = ["run", str(source), "--api-url", api.url, "--config", str(config)]
        assert main([*command, "--no-progress"]) == 0
        [line] = lines(tmp_path / "g.results.csv")
        assert line["status"] == "created"
        assert line["code"] not in theirs
        for code, api_id in theirs.items():  # never adopted as ours, never changed
            found = api.state.find(code)
            assert found is not None
            assert (found["_id"], found["video_id"]) == (api_id, OTHER)


def _other(code: str) -> dict[str, object]:
    return {
        "code": code, "nice_code": code, "video_id": OTHER, "playlist_id": None,
        "plan_id": None, "pass_plan_id": None, "expiration_date": "2031-06-30T00:00:00.000-05:00",
        "redeemed": False, "redeemed_at": None, "created_at": "2031-01-01T00:00:00.000-05:00",
        "updated_at": "2031-01-01T00:00:00.000-05:00", "transaction_id": None,
    }  # fmt: skip


def test_a_generated_code_pasted_beside_its_own_row_is_a_duplicate(tmp_path: Path) -> None:
    source = tmp_path / "p.csv"
    source.write_text(f"Promo Code,Expires,Video ID,Qty\n,2031-06-30,{VIDEO},1\n")
    with sandbox_in_thread() as api:
        assert main(["run", str(source), "--api-url", api.url, "--no-progress"]) == 0
        [first] = lines(tmp_path / "p.results.csv")
        with source.open("a") as handle:
            handle.write(f"{first['code']},2031-06-30,{VIDEO},\n")
        assert main(["run", str(source), "--api-url", api.url, "--no-progress"]) == 1
        generated, pasted = lines(tmp_path / "p.results.csv")
        assert (generated["status"], generated["id"]) == ("created", first["id"])
        assert (pasted["status"], pasted["issue"], pasted["id"]) == (
            "invalid",
            "duplicate-code",
            "",
        )
        assert "row 2" in pasted["error"]
        assert api.state.posts == 1


def test_an_interrupt_while_the_results_are_written_does_not_claim_nothing_was_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importer.commands.context
    import importer.commands.run

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importer.commands.run, "write_results", interrupted)
    monkeypatch.setitem(importer.commands.context.ACTIVITY, "marked", False)
    source = codes_sheet(tmp_path / "i.csv", 3)
    assert main(["run", str(source), "--sandbox", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "before anything was sent" not in err
    assert "the same command finishes the job" in err
    with sqlite3.connect(tmp_path / "i.results.journal") as db:
        (outcome,) = db.execute("SELECT outcome FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert outcome == "stopped"
