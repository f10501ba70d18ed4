"""``revoke``: its pure decisions, table-tested, then end to end over loopback HTTP against the
sandbox (the issue's 2,000-code scenario, faults, ``kill -9``) and the independent imitation."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from importer.api.wire import LiveCode
from importer.cli import main
from importer.commands.revoke import RevokeLine, decide_revoke, revoke_line
from importer.journal import Entry, open_journal
from importer.models import Outcome, Record, Status
from importer.sandbox import Faults
from tests.servers import KEY, independent_api, sandbox_in_thread

ROOT = Path(__file__).resolve().parents[2]
ID, OTHER_ID = "a1" * 12, "b2" * 12
RECORD = Record(5, "code:LEAK1", "LEAK1", "", "", "")
MALFORMED = ("=1+2", "SAVE 10", "1.23457E+11")


def live(api_id: str = ID, redeemed_at: str = "") -> LiveCode:
    return LiveCode(api_id, "LEAK1", "2031-01-01", "video", "c" * 24, bool(redeemed_at),
                    redeemed_at, False)  # fmt: skip


def entry(status: str, api_id: str = ID) -> Entry:
    return Entry("||", status, api_id, "", "", None, 0, 1)


REDEEMED = "2031-01-02T10:00:00.000-05:00"


@pytest.mark.parametrize(
    ("journal", "found", "expected"),
    [
        (None, live(), None),  # held, not redeemed: DELETE it
        (None, live(redeemed_at=REDEEMED), Status.KEPT),
        (None, None, Status.NOT_FOUND),
        (entry(Status.FOUND), live(), None),  # an earlier DELETE refused or never sent
        (entry(Status.FOUND), None, Status.NOT_FOUND),  # someone else deleted it since
        (entry(Status.DELETING), live(), None),  # a crash before the DELETE took effect: again
        (entry(Status.DELETING), None, Status.REVOKED),  # killed after the DELETE: ours
        (entry(Status.DELETING), live(OTHER_ID), Status.REVOKED),  # ours, then made again
        (entry(Status.DELETING), live(redeemed_at=REDEEMED), Status.KEPT),
        (entry(Status.DELETED), None, Status.REVOKED),  # never read again
        (entry(Status.DELETED), live(OTHER_ID), Status.REVOKED),
    ],
)
def test_decide_revoke(journal: Entry | None, found: LiveCode | None, expected: Status) -> None:
    verdict = decide_revoke(journal, found)
    assert (verdict.status if verdict is not None else None) == expected
    if expected == Status.KEPT:
        assert verdict is not None
        assert f"redeemed {REDEEMED}" in verdict.error
        assert "not deleted" in verdict.error


@pytest.mark.parametrize(
    ("journal", "found", "verdict", "expected"),
    [
        (None, live(), Outcome(Status.DELETED, api_id=ID), ("revoked", ID, "")),
        (None, live(redeemed_at=REDEEMED), decide_revoke(None, live(redeemed_at=REDEEMED)),
         ("kept", ID, REDEEMED)),
        (None, None, Outcome(Status.NOT_FOUND, error="Zype holds no such code"),
         ("not found", "", "")),
        (None, live(), Outcome(Status.FAILED, error="down"), ("failed", "", "")),
        (None, live(), Outcome(Status.REJECTED, error="no"), ("failed", "", "")),
        (None, live(), Outcome(Status.PENDING), ("pending", "", "")),
        (entry(Status.DELETING), live(), Outcome(Status.SENDING), ("pending", ID, "")),
        (entry(Status.DELETED), None, None, ("revoked", ID, "")),  # the run stopped early
        (None, None, None, ("pending", "", "")),  # the reading stopped before it
    ],
)  # fmt: skip
def test_revoke_line(
    journal: Entry | None,
    found: LiveCode | None,
    verdict: Outcome | None,
    expected: tuple[str, str, str],
) -> None:
    line = revoke_line(RECORD, journal, found, verdict)
    assert isinstance(line, RevokeLine)
    assert (line.row, line.code) == (5, "LEAK1")
    assert (line.status, line.api_id, line.redeemed_at) == expected
    if line.status == "pending":
        assert "run revoke" in line.error


# -- end to end --------------------------------------------------------------------------------


def lines(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def cli(source: Path, url: str, *extra: str) -> int:
    return main(["revoke", str(source), "--api-url", url, "--rate", "1000", "--no-progress",
                 *extra])  # fmt: skip


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)


class Scenario:
    """The issue's: 2,000 codes of someone else's, 30 of the first 500 redeemed; a list of the
    first 500, 10 codes Zype does not hold, 3 malformed lines and 2 repeats."""

    def __init__(self, state: Any, path: Path) -> None:
        others = state.seed_others(2000, seed=22)
        self.codes = [obj["code"] for obj in others]
        self.ids = {obj["code"]: obj["_id"] for obj in others}
        self.listed = self.codes[:500]
        self.redeemed = self.listed[5::16][:30]
        for code in self.redeemed:
            state.redeem(code)
        self.absent = [f"NOSUCH-{n:04d}" for n in range(10)]
        cells = list(self.listed)
        for n, extra in enumerate(
            [*self.absent, *MALFORMED, self.listed[3].lower(), self.listed[7]]
        ):
            cells.insert(40 * n + 11, extra)
        self.path = path
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Promo Code", "Where we found it"])
            writer.writerows([code, "coupon site"] for code in cells)
        self.to_revoke = set(self.listed) - set(self.redeemed)

    def check_finished(self, state: Any, results: Path) -> None:
        """The API holds the unlisted and the redeemed codes and nothing else; no redeemed code
        was deleted; every line has its status."""
        assert set(state.codes) == set(self.codes[500:]) | set(self.redeemed)
        assert sorted(state.deleted_log) == sorted(self.ids[c] for c in self.to_revoke)
        by_status: dict[str, list[dict[str, str]]] = {}
        for line in lines(results):
            by_status.setdefault(line["status"], []).append(line)
        assert {s: len(v) for s, v in by_status.items()} == {
            "revoked": 470, "kept": 30, "not found": 10, "invalid": 5,
        }  # fmt: skip
        assert {line["code"] for line in by_status["revoked"]} == self.to_revoke
        assert all(line["id"] == self.ids[line["code"]] for line in by_status["revoked"])
        assert {line["code"] for line in by_status["kept"]} == set(self.redeemed)
        assert all(line["redeemed_at"] for line in by_status["kept"])
        assert {line["code"] for line in by_status["not found"]} == set(self.absent)
        invalid = {line["code"]: line["issue"] for line in by_status["invalid"]}
        assert invalid == {
            "'=1+2": "bad-code", "SAVE 10": "bad-code", "1.23457E+11": "code-lost-digits",
            self.listed[3].lower(): "duplicate-code", self.listed[7]: "duplicate-code",
        }  # fmt: skip
        rows = [int(line["row"]) for line in lines(results)]
        assert rows == list(range(2, 2 + 515))


def test_the_plan_reads_only_and_says_what_revoke_would_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_in_thread() as api:
        st = api.state
        case = Scenario(st, tmp_path / "leaked.csv")
        before = (st.gets, st.posts, st.puts, st.deletes)
        summary = tmp_path / "plan.json"
        assert cli(case.path, api.url, "--summary", str(summary)) == 0
        reads = st.gets - before[0]
        assert (st.posts, st.puts, st.deletes) == before[1:]  # no write request
        assert reads <= 600
        assert reads == 510 + 1  # one lookup per listed code, and the probe
        said = capsys.readouterr().err
        assert (
            "revoke would delete 470 code(s), keep 30 redeemed one(s); 10 code(s) Zype does not"
            " hold, 5 line(s) refused." in said
        )
        assert f"{case.redeemed[0]} (row " in said
        assert ", redeemed 20" in said
        assert "NOSUCH-0000 (row" in said
        assert "duplicate of row" in said
        assert "=1+2" in said
        assert "Nothing was deleted: add --yes to revoke." in said
        assert not (tmp_path / "leaked.revoke.csv").exists()
        counts = json.loads(summary.read_text())["counts"]
        assert counts["would revoke"] == 470
        assert counts["not found"] == 10


def test_revoke_deletes_every_unredeemed_listed_code_once_and_keeps_the_redeemed(
    tmp_path: Path,
) -> None:
    with sandbox_in_thread() as api:
        st = api.state
        case = Scenario(st, tmp_path / "leaked.csv")
        html = tmp_path / "revoke.html"
        assert cli(case.path, api.url, "--yes", "--html", str(html)) == 1  # some kept, invalid
        case.check_finished(st, tmp_path / "leaked.revoke.csv")
        page = html.read_text()
        assert "revoked" in page
        assert "redeemed" in page
        deletes, gets = st.deletes, st.gets
        assert cli(case.path, api.url, "--yes") == 1
        assert st.deletes == deletes  # nothing sent again
        assert st.gets - gets == 1 + 40  # the probe; the kept and not-found codes read again
        case.check_finished(st, tmp_path / "leaked.revoke.csv")


def test_revoke_survives_faults_exactly_once(tmp_path: Path) -> None:
    faults = Faults(lost_rate=0.2, error_rate=0.1, reset_rate=0.05, seed=11)
    with sandbox_in_thread(faults) as api:
        st = api.state
        case = Scenario(st, tmp_path / "leaked.csv")
        codes = [cli(case.path, api.url, "--yes") for _ in range(6)]
        assert codes[-1] == 1, codes
        case.check_finished(st, tmp_path / "leaked.revoke.csv")
        assert st.faults_injected > 0


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.mark.slow
def test_revoke_killed_with_sigkill_while_deleting_finishes_exactly_once(tmp_path: Path) -> None:
    config = tmp_path / "slow-commits.yaml"
    # Outcomes kept uncommitted as long as possible: after the kill the journal still says
    # `deleting` for codes already gone, which the rerun must report `revoked`.
    config.write_text("journal:\n  flush_interval: 600\n  batch_size: 1000\n")
    with sandbox_in_thread(Faults(latency=0.01)) as api:
        st = api.state
        case = Scenario(st, tmp_path / "leaked.csv")
        env = {**os.environ, "ZYPE_API_KEY": KEY}
        command = [
            sys.executable, "-m", "importer", "revoke", str(case.path), "--yes", "--api-url",
            api.url, "--rate", "300", "--no-progress", "--config", str(config),
        ]  # fmt: skip
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for(lambda: len(st.deleted_log) >= 150)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deleted = len(st.deleted_log)
        assert 150 <= deleted < 470
        journal = tmp_path / "leaked.revoke.journal"
        with sqlite3.connect(journal) as db:
            marked = dict(db.execute("SELECT api_id, status FROM rows"))
        gone = [api_id for api_id in st.deleted_log if marked.get(api_id) == "deleting"]
        assert gone  # deleted, but the journal never heard back: only its mark says so

        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 1, result.stderr  # kept and invalid lines
        case.check_finished(st, tmp_path / "leaked.revoke.csv")
        statuses = {line["id"]: line["status"] for line in lines(tmp_path / "leaked.revoke.csv")}
        assert {statuses[api_id] for api_id in gone} == {"revoked"}

        deletes = st.deletes
        again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 1, again.stderr
        assert st.deletes == deletes


@pytest.mark.slow
def test_revoke_stopped_by_sigterm_exits_3_and_the_same_command_finishes(tmp_path: Path) -> None:
    with sandbox_in_thread(Faults(latency=0.02)) as api:
        st = api.state
        case = Scenario(st, tmp_path / "leaked.csv")
        env = {**os.environ, "ZYPE_API_KEY": KEY}
        command = [
            sys.executable, "-m", "importer", "revoke", str(case.path), "--yes", "--api-url",
            api.url, "--rate", "200", "--no-progress",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        _wait_for(lambda: len(st.deleted_log) >= 50)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 3, err
        assert "Traceback" not in err
        results = lines(tmp_path / "leaked.revoke.csv")
        revoked = [line for line in results if line["status"] == "revoked"]
        assert len(revoked) == len(st.deleted_log)
        assert any(line["status"] == "pending" for line in results)
        finish = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert finish.returncode == 1, finish.stderr
        case.check_finished(st, tmp_path / "leaked.revoke.csv")


def test_revoke_against_the_independent_imitation(tmp_path: Path) -> None:
    with independent_api() as api:
        st = api.state
        st.add_others(300, seed=4)
        codes = sorted(st.codes)[:40]
        st.redeem(codes[0])
        source = tmp_path / "list.csv"
        source.write_text("Code\n" + "\n".join([*codes, "NOT-THERE"]) + "\n")
        deleted = [st.codes[c]["_id"] for c in codes[1:]]
        assert cli(source, api.url, "--yes") == 1  # one kept
        assert sorted(st.deleted) == sorted(deleted)
        assert len(st.codes) == 300 - 39
        result = {line["code"]: line["status"] for line in lines(tmp_path / "list.revoke.csv")}
        assert result[codes[0]] == "kept"
        assert result["NOT-THERE"] == "not found"
        assert cli(source, api.url, "--yes") == 1
        assert len(st.deleted) == 39


def test_every_listed_code_revoked_is_exit_0_and_a_code_not_found_is_not_a_failure(
    tmp_path: Path,
) -> None:
    with sandbox_in_thread(others=5) as api:
        codes = sorted(api.state.codes)
        source = tmp_path / "all.xlsx"
        results = tmp_path / "all.results.xlsx"
        from openpyxl import Workbook, load_workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["Coupon Code"])
        for code in [*codes, "GONE-1"]:
            sheet.append([code])
        book.save(source)
        assert cli(source, api.url, "--yes", "--results", str(results)) == 0
        assert not api.state.codes
        rows = list(load_workbook(results).active.iter_rows(values_only=True))  # type: ignore[union-attr]
        assert rows[0] == ("row", "code", "status", "id", "redeemed_at", "error", "issue")
        assert [r[2] for r in rows[1:]] == ["revoked"] * 5 + ["not found"]


# -- the command line ----------------------------------------------------------------------------


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.fixture
def listed(tmp_path: Path) -> Path:
    path = tmp_path / "list.csv"
    path.write_text("Code\nLEAK-1\n")
    return path


def test_a_list_without_a_code_column_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nocode.csv"
    path.write_text("Expires,Video ID\n2031-01-01,x\n")
    assert main(["revoke", str(path), "--sandbox"]) == 2
    assert "missing column 'code' (accepted headers: Code, Promo Code" in _error(capsys)


def test_revoke_refuses_another_commands_journal(
    listed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = tmp_path / "promo.csv"
    sheet.write_text("Promo Code,Expires,Video ID\nLEAK-1,2031-03-01,5a1b2c3d4e5f60718293a4b5\n")
    assert main(["run", str(sheet), "--sandbox", "--no-progress"]) == 0
    journal = tmp_path / "promo.results.journal"
    before = journal.read_bytes()
    assert main(["revoke", str(listed), "--sandbox", "--journal", str(journal), "--yes"]) == 2
    assert "is the journal of another command (run)" in _error(capsys)
    assert journal.read_bytes() == before


def test_revoke_without_a_key_or_with_its_journal_held_is_exit_2(
    listed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ZYPE_API_KEY")
    assert main(["revoke", str(listed), "--yes"]) == 2
    assert "ZYPE_API_KEY is not set" in _error(capsys)
    holder = open_journal(listed.with_name("list.revoke.journal"))
    try:
        assert main(["revoke", str(listed), "--sandbox", "--yes"]) == 2
        assert "another run holds this journal (pid" in _error(capsys)
    finally:
        holder.close()


def test_revoke_defaults_beside_the_input_and_its_help_has_an_example(
    listed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["revoke", str(listed), "--sandbox", "--yes", "--no-progress"]) == 0
    assert (listed.with_name("list.revoke.csv")).exists()
    assert (listed.with_name("list.revoke.journal")).exists()
    assert not (listed.with_name("list.results.csv")).exists()
    with pytest.raises(SystemExit):
        main(["revoke", "--help"])
    out = capsys.readouterr().out
    assert "zype-import revoke leaked.csv --yes" in out
    for option in ("--rate", "--concurrency", "--results", "--journal", "--summary", "--html"):
        assert option in out


def test_a_code_revoked_from_another_sheets_run_is_missing_to_that_sheets_audit(
    tmp_path: Path,
) -> None:
    sheet = tmp_path / "campaign.csv"
    rows = [f"CAMP-{n:03d},2031-03-01,5a1b2c3d4e5f60718293a4b5" for n in range(20)]
    sheet.write_text("Promo Code,Expires,Video ID\n" + "\n".join(rows) + "\n")
    leaked = tmp_path / "leaked.csv"
    leaked.write_text("Code\nCAMP-003\ncamp-007\n")
    with sandbox_in_thread() as api:
        url = ["--api-url", api.url, "--rate", "1000", "--no-progress"]
        assert main(["run", str(sheet), *url]) == 0
        assert cli(leaked, api.url, "--yes") == 0
        audit = tmp_path / "campaign.audit.csv"
        assert main(["audit", str(sheet), *url, "--output", str(audit)]) == 1
        states = {line["code"]: line["state"] for line in lines(audit)}
        assert {code for code, state in states.items() if state == "missing"} == {
            "CAMP-003",
            "CAMP-007",
        }
