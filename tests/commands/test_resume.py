"""Resume for real: the importer as a subprocess, killed part-way, against the sandbox in another
process, with the real SQLite journal in between; then the same command again.

What a user relies on, checked on the server itself: after any number of ``kill -9`` the rerun
ends with every row's code created exactly once, with the id the results file reports; a
finished job's rerun sends no request; SIGTERM stops cleanly with exit 3; a second run is
refused while the first holds the journal; and an edited spreadsheet resumes row by row.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import json
import os
import secrets
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pytest

from importer.cli import main
from tests.servers import KEY, sandbox_in_thread

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_KEY = "resume-key-7c41e0"
#: Codes per sheet: given codes, plus one quantity row of generated ones in the middle.
GIVEN, GENERATED = 560, 40
CODES = GIVEN + GENERATED
RATE, CONCURRENCY = "400", "8"
#: The sandbox answers "Video not found" for this well-formed id.
MISSING_VIDEO = "0" * 24


@dataclass
class Api:
    """The sandbox in its own process, read over HTTP like any client would."""

    url: str
    key: str = SANDBOX_KEY

    def _get(self, path: str) -> Any:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            conn.request("GET", f"{path}&api_key={self.key}")
            answer = conn.getresponse()
            assert answer.status == 200, answer.status
            return json.loads(answer.read())
        finally:
            conn.close()

    def count(self) -> int:
        """Codes on the API: with one per page, the number of pages."""
        return int(self._get("/redemption_codes?per_page=1&page=1")["pagination"]["pages"])

    def codes(self) -> list[dict[str, Any]]:
        """Every code object on the API, page by page."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self._get(f"/redemption_codes?per_page=100&page={page}")
            found.extend(body["response"])
            if not body["pagination"]["next"]:
                return found
            page += 1


@pytest.fixture
def api() -> Iterator[Api]:
    """A fresh sandbox process on a free port (``--port 0``; it prints the one it got)."""
    env = {**os.environ, "ZYPE_SANDBOX_KEY": SANDBOX_KEY, "ZYPE_API_KEY": SANDBOX_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "importer", "sandbox", "--port", "0", "--faults", "latency=0.005"],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline().decode() if ready else ""
        assert line.startswith("sandbox listening on "), line
        yield Api(line.split()[3])
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@dataclass
class Run:
    """One ``zype-import run`` as a subprocess; its stderr goes to a file."""

    proc: subprocess.Popen[bytes]
    stderr_path: Path
    summary_path: Path
    _stderr: BinaryIO

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._stderr.close()

    def kill(self, signum: int = signal.SIGKILL) -> int:
        self.proc.send_signal(signum)
        return self.wait()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text())


class Sheet:
    """A promo sheet in *folder* and the files a run keeps beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "promo.csv"
        self.results = folder / "promo.results.csv"
        self.journal = folder / "promo.results.journal"
        self.runs = 0
        self.quantity_row = 2 + GIVEN // 2
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Promo Code", "Expires", "Video ID", "Playlist ID", "Qty"])
            for n in range(GIVEN):
                if n == GIVEN // 2:
                    writer.writerow(["", "2031-06-30", secrets.token_hex(12), "", GENERATED])
                ids = [secrets.token_hex(12), ""] if n % 2 else ["", secrets.token_hex(12)]
                writer.writerow([f"RES-{n:04d}", "2031-06-30", *ids, ""])

    def start(self, api: Api, *, rate: str = RATE) -> Run:
        """``zype-import run`` exactly as a user (or cron) would type it, every time the same."""
        self.runs += 1
        stderr_path = self.folder / f"run{self.runs}.stderr"
        summary_path = self.folder / f"run{self.runs}.summary.json"
        handle = stderr_path.open("wb")
        env = {**os.environ, "ZYPE_API_KEY": api.key, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "importer", "run", str(self.path), "--api-url", api.url]
        command += ["--rate", rate, "--concurrency", CONCURRENCY, "--no-progress"]
        proc = subprocess.Popen(
            [*command, "--summary", str(summary_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env=env,
            cwd=self.folder,
        )
        return Run(proc, stderr_path, summary_path, handle)

    def results_lines(self) -> list[dict[str, str]]:
        with self.results.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    def journal_states(self) -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)) as db:
            return dict(db.execute("SELECT status, count(*) FROM rows GROUP BY status"))


def wait_until(condition: Callable[[], bool], run: Run, timeout: float = 60) -> bool:
    """Poll *condition*; False if *run* ended first (it finished before we could interrupt)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if run.proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
    return True


def assert_every_code_created_once(sheet: Sheet, api: Api) -> None:
    """The results file and the server agree: each row's code once, with the server's id."""
    lines = sheet.results_lines()
    assert len(lines) == CODES
    assert {line["status"] for line in lines} == {"created"}
    on_api = api.codes()
    by_code = {obj["code"]: obj for obj in on_api}
    assert len(on_api) == len(by_code) == CODES  # nothing created twice, nothing extra
    assert sorted(by_code) == sorted(line["code"] for line in lines)
    for line in lines:
        assert line["id"] == by_code[line["code"]]["_id"], line
    generated = [line for line in lines if int(line["row"]) == sheet.quantity_row]
    assert len(generated) == GENERATED
    assert sheet.journal_states() == {"created": CODES}


def status_output(journal: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["status", "--journal", str(journal)]) == 0
    return capsys.readouterr().out


def test_kill_9_at_several_points_then_the_same_command_finishes(
    tmp_path: Path, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = Sheet(tmp_path)

    # Right after start: the journal has just been created, nothing is out yet.
    run = sheet.start(api)
    wait_until(sheet.journal.exists, run)
    assert run.kill() == -signal.SIGKILL

    # Mid-run, while a batch is out.
    run = sheet.start(api)
    assert wait_until(lambda: api.count() >= 150, run), run.stderr
    assert run.kill() == -signal.SIGKILL
    assert sheet.journal_states().get("sending", 0) > 0  # killed with a batch out
    out = status_output(sheet.journal, capsys)
    assert "did not finish" in out
    assert "left to do: 0" not in out

    # Twice in a row: as soon as the next run creates anything (after settling the rows the
    # kill left `sending`), and again well into it.
    for more in (1, 150):
        before = api.count()
        run = sheet.start(api)
        assert wait_until(lambda: api.count() >= before + more, run), run.stderr  # noqa: B023
        assert run.kill() == -signal.SIGKILL
    assert api.count() < CODES

    run = sheet.start(api)
    assert run.wait() == 0, run.stderr
    assert run.summary["counts"]["created"] == CODES
    assert run.summary["lookups"] > 0  # what the last kill left `sending` was looked up
    assert_every_code_created_once(sheet, api)
    out = status_output(sheet.journal, capsys)
    assert "finished" in out
    assert "left to do: 0" in out

    # The same command once more: a finished job sends nothing.
    run = sheet.start(api)
    assert run.wait() == 0, run.stderr
    assert run.summary["requests"] == 0
    assert api.count() == CODES


def test_sigterm_stops_with_exit_3_and_the_rerun_finishes(
    tmp_path: Path, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = Sheet(tmp_path)
    run = sheet.start(api, rate="300")
    assert wait_until(lambda: api.count() >= 200, run), run.stderr
    assert run.kill(signal.SIGTERM) == 3, run.stderr
    assert "interrupted" in run.summary["stopped"]

    lines = sheet.results_lines()  # written although the run was interrupted
    assert len(lines) == CODES
    statuses = [line["status"] for line in lines]
    assert set(statuses) == {"created", "pending"}
    on_api = {obj["code"]: obj["_id"] for obj in api.codes()}
    created = {line["code"]: line["id"] for line in lines if line["status"] == "created"}
    assert created == on_api  # requests in flight were let finish and recorded
    states = sheet.journal_states()
    assert "sending" not in states, states
    assert states["created"] == len(created)
    assert "stopped" in status_output(sheet.journal, capsys)

    run = sheet.start(api)
    assert run.wait() == 0, run.stderr
    assert_every_code_created_once(sheet, api)


def test_a_second_run_is_refused_while_the_first_holds_the_journal(
    tmp_path: Path, api: Api
) -> None:
    sheet = Sheet(tmp_path)
    lock = sheet.journal.with_name(sheet.journal.name + ".lock")
    first = sheet.start(api, rate="40")
    try:
        assert wait_until(
            lambda: lock.exists() and lock.read_text().startswith(f"pid {first.proc.pid},"),
            first,
        ), first.stderr
        started = time.monotonic()
        second = sheet.start(api)
        assert second.wait() == 2, second.stderr
        assert time.monotonic() - started < 15  # refused at once, not after waiting
        assert f"another run holds this journal (pid {first.proc.pid}, started " in second.stderr
        assert not second.summary_path.exists()  # it never got as far as sending
    finally:
        if first.proc.poll() is None:
            first.kill(signal.SIGTERM)
        else:
            first.wait()
    third = sheet.start(api)
    assert third.wait() == 0, third.stderr
    assert_every_code_created_once(sheet, api)


# -- an edited spreadsheet (in-process: the server's own counters show what was sent) ---------

VIDEO = {name: secrets.token_hex(12) for name in ("gen", "gen2", "keep", "fix", "move", "moved")}
VIDEO["new"] = secrets.token_hex(12)
VIDEO["rej-fixed"] = secrets.token_hex(12)

HEADER = "Promo Code,Expires,Video ID,Qty\n"
GEN = f",2031-01-31,{VIDEO['gen']},1\n"
KEEP = f"KEEP-1,2031-01-31,{VIDEO['keep']},\n"
REJ = f"REJ-1,2031-01-31,{MISSING_VIDEO},\n"


def _run_in_process(sheet: Path, url: str) -> int:
    return main(["run", str(sheet), "--api-url", url, "--rate", "500", "--no-progress"])


def _lines(results: Path) -> dict[str, dict[str, str]]:
    with results.open(encoding="utf-8-sig", newline="") as handle:
        return {line["row"] + ":" + line["code"]: line for line in csv.DictReader(handle)}


def test_an_edited_spreadsheet_resumes_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)
    sheet = tmp_path / "promo.csv"
    results = tmp_path / "promo.results.csv"
    sheet.write_text(
        HEADER
        + GEN
        + KEEP
        + "FIX-1,2031-01-31,not-a-video-id,\n"
        + REJ
        + f"MOVE-1,2031-01-31,{VIDEO['move']},\n"
    )
    with sandbox_in_thread() as server:
        state = server.state
        assert _run_in_process(sheet, server.url) == 1
        first = list(_lines(results).values())
        assert [line["status"] for line in first] == [
            "created",
            "created",
            "invalid",
            "rejected",
            "created",
        ]
        generated = first[0]["code"]
        assert first[3]["error"] == "Video not found"
        assert (state.posts, state.gets) == (4, 1)  # one GET: the probe

        # Rows inserted above (a given code, and a quantity row of another content), the invalid
        # row corrected, the rejected row untouched, a created row moved to another video.
        sheet.write_text(
            HEADER
            + f"NEW-1,2031-01-31,{VIDEO['new']},\n"
            + f",2031-02-28,{VIDEO['gen2']},2\n"
            + GEN
            + KEEP
            + f"FIX-1,2031-01-31,{VIDEO['fix']},\n"
            + REJ
            + f"MOVE-1,2031-01-31,{VIDEO['moved']},\n"
        )
        assert _run_in_process(sheet, server.url) == 1
        lines = _lines(results)
        assert lines[f"4:{generated}"]["status"] == "created"  # the same code, kept by content
        assert lines[f"4:{generated}"]["id"] == first[0]["id"]
        assert lines["5:KEEP-1"]["id"] == first[1]["id"]
        assert lines["6:FIX-1"]["status"] == "created"
        assert lines["7:REJ-1"]["status"] == "rejected"
        moved = lines["8:MOVE-1"]
        assert (moved["status"], moved["issue"]) == ("rejected", "changed-after-create")
        assert VIDEO["move"] in moved["error"]
        assert moved["id"] == first[4]["id"]
        # Sent: NEW-1, the two new generated codes and FIX-1; not REJ-1, MOVE-1 or anything done.
        assert (state.posts, state.gets) == (4 + 4, 2)
        assert state.find_code("MOVE-1")["video_id"] == VIDEO["move"]
        assert len(state.codes) == 3 + 4

        # The rejected row corrected, the moved row moved back: REJ-1 is looked up, then sent.
        sheet.write_text(
            sheet.read_text()
            .replace(REJ, f"REJ-1,2031-01-31,{VIDEO['rej-fixed']},\n")
            .replace(VIDEO["moved"], VIDEO["move"])
        )
        assert _run_in_process(sheet, server.url) == 0
        assert {line["status"] for line in _lines(results).values()} == {"created"}
        assert (state.posts, state.gets) == (8 + 1, 2 + 2)
        assert len(state.created_log) == len(set(state.created_log)) == 8

        assert _run_in_process(sheet, server.url) == 0
        assert (state.posts, state.gets) == (9, 4)


def test_a_generated_code_pasted_into_the_sheet_is_the_same_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes copied from the results file into the code column (to print them, or to edit the
    row without a new code) are the generated rows' codes: never sent again, edits reported."""
    monkeypatch.setenv("ZYPE_API_KEY", KEY)
    sheet = tmp_path / "promo.csv"
    results = tmp_path / "promo.results.csv"
    sheet.write_text(HEADER + GEN + KEEP)
    with sandbox_in_thread() as server:
        state = server.state
        assert _run_in_process(sheet, server.url) == 0
        first = list(_lines(results).values())
        generated = first[0]["code"]
        assert state.posts == 2

        sheet.write_text(HEADER + f"{generated.lower()},2031-01-31,{VIDEO['gen']},\n" + KEEP)
        assert _run_in_process(sheet, server.url) == 0
        line = _lines(results)[f"2:{generated.lower()}"]
        assert (line["status"], line["id"], line["error"]) == ("created", first[0]["id"], "")
        assert (state.posts, state.gets) == (2, 1)

        sheet.write_text(HEADER + f"{generated},2032-06-30,{VIDEO['gen']},\n" + KEEP)
        assert _run_in_process(sheet, server.url) == 0
        line = _lines(results)[f"2:{generated}"]
        assert (line["status"], line["issue"]) == ("created", "changed-after-create")
        assert "2032-06-30 was not applied" in line["error"]
        assert (state.posts, state.gets) == (2, 1)
