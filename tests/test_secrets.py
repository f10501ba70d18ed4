"""The API key is a secret: a canary key must appear in no output and no file a run leaves.

Runs the real command in a subprocess (so stdout, stderr and any traceback are what a user or
cron would see) against loopback servers that answer 5xx, reset connections, lose answers and
refuse the key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from importer.sandbox import Faults
from tests.servers import sandbox_in_thread

ROOT = Path(__file__).resolve().parent.parent
CANARY = "CANARY-key/with+odd&chars=7f3e9a1b"
LEAKS = [CANARY, quote(CANARY, safe=""), quote_plus(CANARY), "7f3e9a1b"]


def _sheet(path: Path, rows: int = 60) -> Path:
    lines = ["Promo Code,Expires,Video ID"]
    lines += [f"SECRET-{n:03d},2031-01-01,{n:024x}" for n in range(1, rows + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(
    tmp_path: Path,
    url: str,
    *extra: str,
    key: str = CANARY,
    key_in: str = "query",
    command: str = "run",
) -> subprocess.CompletedProcess:
    config = tmp_path / "fast.yaml"
    config.write_text(
        "send:\n  backoff_initial: 0.01\n  backoff_max: 0.05\n  attempts: 3\n"
        f"api:\n  total_timeout: 5\n  connect_timeout: 1\n  key_in: {key_in}\n"
    )
    env = {**os.environ, "ZYPE_API_KEY": key, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "importer",
            command,
            str(_sheet(tmp_path / "codes.csv")),
            "--api-url",
            url,
            "--rate",
            "500",
            "--concurrency",
            "4",
            "--config",
            str(config),
            "--summary",
            str(tmp_path / "summary.json"),
            "--log-file",
            str(tmp_path / "run.log"),
            "--verbose",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def _assert_no_leak(result: subprocess.CompletedProcess, folder: Path) -> None:
    for leak in LEAKS:
        assert leak not in result.stdout
        assert leak not in result.stderr
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".journal" for p in files)
    assert any(p.name == "run.log" for p in files)
    for path in files:
        data = path.read_bytes()
        for leak in LEAKS:
            assert leak.encode() not in data, f"{leak!r} in {path.name}"


@pytest.mark.parametrize("key_in", ["query", "header"])
def test_run_against_a_faulty_api_leaks_no_key(tmp_path: Path, key_in: str) -> None:
    faults = Faults(error_rate=0.2, reset_rate=0.2, lost_rate=0.1, seed=3)
    with sandbox_in_thread(faults, key=CANARY) as api:
        result = _run(tmp_path, api.url, key_in=key_in)
        assert result.returncode in (0, 1), result.stderr[-2000:]
        assert api.state.faults_injected > 0
    _assert_no_leak(result, tmp_path)


def test_update_audit_revoke_and_undo_against_a_faulty_api_leak_no_key(tmp_path: Path) -> None:
    faults = Faults(error_rate=0.2, reset_rate=0.1, lost_rate=0.1, seed=5)
    ends: list[str] = []  # each command's exit code and last lines, should no DELETE be sent
    with sandbox_in_thread(faults, key=CANARY) as api:
        for command, extra in (
            ("run", ()),
            ("run", ("--update",)),
            ("audit", ()),
            ("revoke", ()),
            ("revoke", ("--yes",)),
            ("undo", ()),
            ("undo", ("--yes",)),
        ):
            result = _run(tmp_path, api.url, *extra, command=command)
            assert result.returncode in (0, 1, 3), result.stderr[-2000:]
            _assert_no_leak(result, tmp_path)
            ends.append(f"{command} {extra}: {result.returncode} {result.stderr[-400:]}")
        assert api.state.deletes > 0, "\n".join(ends)


def test_refused_key_stops_at_once_and_leaks_nothing(tmp_path: Path) -> None:
    with sandbox_in_thread(Faults(error_rate=0.3, seed=1), key="the-right-key") as api:
        result = _run(tmp_path, api.url)
        assert result.returncode == 3
        assert api.state.posts <= 4 + 4  # the first wave, and 503-retries racing the 401
    assert "refused the key" in result.stderr
    _assert_no_leak(result, tmp_path)


def test_unreachable_api_leaks_nothing(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run(tmp_path, f"http://127.0.0.1:{port}")
    assert result.returncode in (1, 3)
    assert "cannot connect" in (tmp_path / "run.log").read_text()
    _assert_no_leak(result, tmp_path)


def test_results_and_summary_are_written_when_the_api_is_down(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _run(tmp_path, f"http://127.0.0.1:{port}")
    assert (tmp_path / "codes.results.csv").exists()
    assert (tmp_path / "summary.json").exists()
