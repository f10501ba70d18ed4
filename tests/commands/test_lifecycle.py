"""The life of a batch end to end, over real loopback HTTP: undo, run --update, audit, a wrong
api.url, and kill -9 in the middle of an undo. Every server is the project's sandbox or the
independent imitation in tests/servers.py, inspected directly after each command."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from importer.cli import main
from importer.sandbox import Faults
from tests.servers import KEY, independent_api, sandbox_in_thread

ROOT = Path(__file__).resolve().parents[2]
VIDEOS = ("5a1b2c3d4e5f60718293a4b5", "6b2c3d4e5f60718293a4b5c6", "7c3d4e5f60718293a4b5c6d7")
PLAN = "8d4e5f60718293a4b5c6d7e8"


def sheet(
    path: Path, rows: int, *, generated: int = 0, edits: dict[int, str] | None = None
) -> Path:
    """`rows` codes over three videos, then `generated` rows with a quantity of 2 and no code.

    `edits` changes row n's date (a ``YYYY-MM-DD``) or, given ``plan``, its entitlement.
    """
    edits = edits or {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Promo Code", "Expires", "Video ID", "Plan ID", "Qty"])
        for n in range(rows):
            edit = edits.get(n, "")
            video, plan = ("", PLAN) if edit == "plan" else (VIDEOS[n % 3], "")
            date = edit if edit and edit != "plan" else "2031-06-30"
            writer.writerow([f"LIFE-{n:05d}", date, video, plan, ""])
        for n in range(generated):
            writer.writerow(["", "2031-07-31", VIDEOS[n % 3], "", "2"])
    return path


def lines(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def cli(command: str, source: Path, url: str, *extra: str) -> int:
    return main([command, str(source), "--api-url", url, "--rate", "1000", "--no-progress", *extra])


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)


def test_undo_deletes_every_unredeemed_code_once_keeps_redeemed_ones_and_run_recreates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = sheet(tmp_path / "batch.csv", 300, generated=5)
    results = tmp_path / "batch.results.csv"
    with sandbox_in_thread(others=150) as api:
        st = api.state
        assert cli("run", source, api.url) == 0
        first = lines(results)
        ours = {line["id"] for line in first}
        assert len(ours) == 310
        redeemed = sorted(ours)[:7]
        for api_id in redeemed:
            st.redeem(api_id)

        # Without --yes: reads only.
        writes = (st.posts, st.puts, st.deletes)
        gets = st.gets
        capsys.readouterr()
        assert cli("undo", source, api.url) == 0
        assert (st.posts, st.puts, st.deletes) == writes
        assert st.gets - gets <= 310 // 100 + 3 + 1  # list pages per video window, the probe
        said = capsys.readouterr().err
        assert "would delete 303 code(s) and keep 7 redeemed one(s)" in said
        assert len(st.codes) == 310 + 150

        # With --yes: every unredeemed code deleted once, the redeemed kept.
        assert cli("undo", source, api.url, "--yes") == 1  # some were kept
        assert sorted(st.deleted_log) == sorted(ours - set(redeemed))
        assert all(st.find(api_id) is not None for api_id in redeemed)
        assert len(st.codes) == 7 + 150  # other people's codes untouched
        after = {line["id"]: line for line in lines(results)}
        assert {after[i]["status"] for i in redeemed} == {"kept"}
        assert "redeemed" in after[redeemed[0]]["error"]
        assert sum(1 for line in after.values() if line["status"] == "deleted") == 303

        # A finished undo sends no DELETE.
        deletes = st.deletes
        assert cli("undo", source, api.url, "--yes") == 1
        assert st.deletes == deletes

        status = subprocess.run(
            [sys.executable, "-m", "importer", "status", str(source), "--json"],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        assert '"deleted": 303' in status.stdout

        # A later run creates them again, generated codes with new codes.
        old_generated = {
            line["code"]
            for line in first
            if not line["code"].startswith("LIFE") and line["id"] not in redeemed
        }
        assert cli("run", source, api.url) == 0
        again = lines(results)
        assert {line["status"] for line in again} == {"created"}
        new_generated = {line["code"] for line in again if not line["code"].startswith("LIFE")}
        assert len(new_generated) == 10
        assert old_generated
        assert not new_generated & old_generated  # deleted codes are not reused
        assert len(st.codes) == 310 + 150


def test_undo_survives_faults_exactly_once(tmp_path: Path) -> None:
    source = sheet(tmp_path / "faulty.csv", 200)
    faults = Faults(lost_rate=0.2, error_rate=0.1, reset_rate=0.05, seed=7)
    with sandbox_in_thread(faults) as api:
        assert cli("run", source, api.url) in (0, 1, 3)
        while cli("run", source, api.url) != 0:
            pass
        ids = {line["id"] for line in lines(tmp_path / "faulty.results.csv")}
        assert len(ids) == 200
        # A code whose tries all failed is `failed` (exit 1); the same command finishes it.
        codes = [cli("undo", source, api.url, "--yes") for _ in range(3)]
        assert codes[-1] == 0
        assert sorted(api.state.deleted_log) == sorted(ids)  # each once, none left
        assert not api.state.codes


def test_run_update_puts_each_edited_row_once_and_keeps_redeemed(tmp_path: Path) -> None:
    source = sheet(tmp_path / "edit.csv", 30)
    results = tmp_path / "edit.results.csv"
    with independent_api() as api:
        st = api.state
        assert cli("run", source, api.url) == 0
        created = {line["code"]: line["id"] for line in lines(results)}
        st.redeem(created["LIFE-00007"])
        edits = {3: "2032-01-31", 4: "2032-02-29", 5: "plan", 7: "2032-03-31"}
        sheet(source, 30, edits=edits)

        # Without --update: nothing changes.
        posts = st.posts
        assert cli("run", source, api.url) == 1  # the new entitlement is reported rejected
        assert (st.posts, st.puts) == (posts, 0)

        assert (
            main(["validate", str(source), "--update", "--results", str(tmp_path / "v.csv")]) == 0
        )
        assert cli("run", source, api.url, "--update") == 1  # row 7 kept: redeemed
        assert st.puts == 3
        by_code = {line["code"]: line for line in lines(results)}
        assert [by_code[f"LIFE-0000{n}"]["status"] for n in (3, 4, 5, 7)] == [
            "updated", "updated", "updated", "kept",
        ]  # fmt: skip
        held = {obj["code"]: obj for obj in st.codes.values()}
        assert held["LIFE-00003"]["expiration_date"].startswith("2032-01-31")
        assert held["LIFE-00005"]["plan_id"] == PLAN
        assert not held["LIFE-00005"]["video_id"]
        assert held["LIFE-00007"]["expiration_date"].startswith("2031-06-30")

        # A rerun sends nothing more.
        requests = (st.posts, st.puts, st.gets)
        assert cli("run", source, api.url, "--update") == 1  # row 7 is still kept
        assert (st.posts, st.puts) == requests[:2]


def test_audit_reports_every_rows_true_state_with_list_calls(tmp_path: Path) -> None:
    source = sheet(tmp_path / "audit.csv", 600)
    output = tmp_path / "audit.out.csv"
    with sandbox_in_thread() as api:
        st = api.state
        assert cli("run", source, api.url) == 0
        ids = {line["code"]: line["id"] for line in lines(tmp_path / "audit.results.csv")}
        st.seed_others(400)
        for n in range(5):
            st.redeem(ids[f"LIFE-{n:05d}"])
        for n in range(10, 13):
            st.admin_delete(ids[f"LIFE-{n:05d}"])
        st.admin_change(ids["LIFE-00020"], expiration_date="2033-01-31")
        st.admin_change(ids["LIFE-00021"], video_id="", plan_id=PLAN)
        requests, writes = st.requests, (st.posts, st.puts, st.deletes)

        code = cli("audit", source, api.url, "--output", str(output), "--expiring-within", "3650")
        assert code == 1
        assert (st.posts, st.puts, st.deletes) == writes  # no write request
        used = st.requests - requests
        assert used <= 600 // 100 + 3 + 1 + 3 + 1  # pages per video, page ends, probe, strays
        audit = {line["code"]: line for line in lines(output)}
        assert {audit[f"LIFE-{n:05d}"]["state"] for n in range(5)} == {"redeemed"}
        assert audit["LIFE-00000"]["redeemed_at"]
        assert {audit[f"LIFE-{n:05d}"]["state"] for n in range(10, 13)} == {"missing"}
        assert "expiration 2031-06-30 -> 2033-01-31" in audit["LIFE-00020"]["changed"]
        assert f"-> plan {PLAN}" in audit["LIFE-00021"]["changed"]
        assert audit["LIFE-00030"]["state"] == "available"
        assert audit["LIFE-00030"]["changed"] == ""
        assert audit["LIFE-00030"]["expiring_soon"].startswith("in ")


def test_a_wrong_api_path_stops_at_once_and_the_right_url_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = sheet(tmp_path / "wrong.csv", 20)
    results = tmp_path / "wrong.results.csv"
    with sandbox_in_thread() as api:
        assert cli("run", source, api.url + "/v2") == 3
        assert api.state.posts == 0
        assert {line["status"] for line in lines(results)} == {"pending"}
        err = capsys.readouterr().err
        assert f"{api.url}/v2" in err
        assert "does not look like Zype's API" in err
        assert cli("run", source, api.url) == 0
        assert api.state.posts == 20


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.slow
def test_undo_killed_twice_with_sigkill_finishes_exactly_once(tmp_path: Path) -> None:
    source = sheet(tmp_path / "kill.csv", 400)
    with sandbox_in_thread(Faults(latency=0.01)) as api:
        st = api.state
        assert cli("run", source, api.url, "--concurrency", "16") == 0
        ids = {line["id"] for line in lines(tmp_path / "kill.results.csv")}
        redeemed = sorted(ids)[:4]
        for api_id in redeemed:
            st.redeem(api_id)
        env = {**os.environ, "ZYPE_API_KEY": KEY}
        command = [
            sys.executable, "-m", "importer", "undo", str(source), "--yes", "--api-url",
            api.url, "--rate", "200", "--no-progress",
        ]  # fmt: skip
        for stop_at in (60, 200):
            process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _wait_for(lambda n=stop_at: len(st.deleted_log) >= n)  # type: ignore[misc]
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 1, result.stderr  # kept: the redeemed ones
        assert sorted(st.deleted_log) == sorted(ids - set(redeemed))
        deletes = st.deletes
        again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 1
        assert st.deletes == deletes


def test_audit_of_many_codes_moved_in_zypes_admin_stays_about_n_over_100(tmp_path: Path) -> None:
    source = sheet(tmp_path / "moved.csv", 600)
    output = tmp_path / "moved.audit.csv"
    with sandbox_in_thread() as api:
        st = api.state
        assert cli("run", source, api.url) == 0
        ids = {line["code"]: line["id"] for line in lines(tmp_path / "moved.results.csv")}
        st.seed_others(300)
        for n in range(100, 160):  # sixty codes moved to a plan by hand
            st.admin_change(ids[f"LIFE-{n:05d}"], video_id="", plan_id=PLAN)
        requests = st.requests
        assert cli("audit", source, api.url, "--output", str(output)) == 1
        used = st.requests - requests
        # pages by video (about 600/100), then one sweep of the window (about 900/100)
        assert used <= 600 // 100 + 3 + (600 + 300) // 100 + 1 + 2
        moved = [line for line in lines(output) if line["changed"]]
        assert len(moved) == 60
        assert {line["state"] for line in moved} == {"available"}


def test_undo_and_audit_against_the_independent_imitation(tmp_path: Path) -> None:
    source = sheet(tmp_path / "indep.csv", 250)
    output = tmp_path / "indep.audit.csv"
    with independent_api() as api:
        st = api.state
        assert cli("run", source, api.url) == 0
        ids = {line["code"]: line["id"] for line in lines(tmp_path / "indep.results.csv")}
        st.add_others(120)
        st.redeem(ids["LIFE-00001"])
        st.admin_delete(ids["LIFE-00002"])
        gets = st.gets
        assert cli("audit", source, api.url, "--output", str(output)) == 1  # one missing
        assert st.gets - gets <= 250 // 100 + 3 + 1 + 1 + 1
        audit = {line["code"]: line["state"] for line in lines(output)}
        assert (audit["LIFE-00001"], audit["LIFE-00002"], audit["LIFE-00003"]) == (
            "redeemed", "missing", "available",
        )  # fmt: skip
        assert cli("undo", source, api.url, "--yes") == 1  # the redeemed one is kept
        assert sorted(st.deleted) == sorted(
            set(ids.values()) - {ids["LIFE-00001"], ids["LIFE-00002"]}
        )
        assert st.lookup(ids["LIFE-00001"]) is not None


@pytest.mark.slow
def test_undo_stopped_by_sigterm_exits_3_and_the_same_command_finishes(tmp_path: Path) -> None:
    source = sheet(tmp_path / "term.csv", 300)
    with sandbox_in_thread(Faults(latency=0.02)) as api:
        st = api.state
        assert cli("run", source, api.url, "--concurrency", "16") == 0
        ids = {line["id"] for line in lines(tmp_path / "term.results.csv")}
        env = {**os.environ, "ZYPE_API_KEY": KEY}
        command = [
            sys.executable, "-m", "importer", "undo", str(source), "--yes", "--api-url",
            api.url, "--rate", "100", "--no-progress",
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
        results = {line["id"]: line["status"] for line in lines(tmp_path / "term.results.csv")}
        assert set(results.values()) <= {"deleted", "pending"}
        assert sum(1 for s in results.values() if s == "deleted") == len(st.deleted_log)
        finish = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert finish.returncode == 0, finish.stderr
        assert sorted(st.deleted_log) == sorted(ids)
