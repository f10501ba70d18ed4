"""``--rate auto`` end to end: real HTTP to the sandbox on loopback, whose limit it is not told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from importer.cli import main
from importer.sandbox import Faults
from tests.servers import KEY, sandbox_in_thread

VIDEO = "5f0c3e2a9b1d4e6f7a8b9c0d"


def _sheet(path: Path, prefix: str, rows: int) -> Path:
    lines = ["code,expiration_date,video_id"]
    lines += [f"{prefix}{n:05d},2031-12-31,{VIDEO}" for n in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _command(*args: str) -> tuple[int, dict[str, object]]:
    """``zype-import COMMAND INPUT ... --rate auto``: its exit code and its ``--summary``."""
    summary = Path(args[1]).with_name(f"{args[0]}.summary.json")
    code = main([*args, "--rate", "auto", "--no-progress", "-q", "--summary", str(summary)])
    data: dict[str, object] = json.loads(summary.read_text())
    return code, data


def _run(sheet: Path, url: str) -> dict[str, object]:
    code, data = _command("run", str(sheet), "--api-url", url)
    assert code == 0
    return data


@pytest.mark.slow
def test_a_second_run_starts_at_the_pace_the_first_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with sandbox_in_thread(Faults(rate_limit=50)) as api:
        first = _run(_sheet(tmp_path / "a.csv", "FIRST", 400), api.url)
        second = _run(_sheet(tmp_path / "b.csv", "AGAIN", 200), api.url)
        created = list(api.state.created_log)
    assert len(created) == len(set(created)) == 600  # every code exactly once
    assert isinstance(first["pace"], float)
    assert 40 <= first["pace"] <= 50
    assert isinstance(second["rate"], float)
    assert second["rate"] >= 40
    assert second["throttled"] <= 2
    cache = (tmp_path / "cache" / "zype-import" / "rates.json").read_text()
    assert KEY not in cache
    assert api.url in cache


@pytest.mark.slow
def test_every_command_that_sends_follows_the_hidden_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run, audit, revoke of half of it and undo of the rest, one straight after another."""
    monkeypatch.setenv("ZYPE_API_KEY", KEY)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sheet = _sheet(tmp_path / "batch.csv", "AUTO", 120)
    codes = [f"AUTO{n:05d}" for n in range(120)]
    leaked = tmp_path / "leaked.csv"
    leaked.write_text("code\n" + "".join(f"{c}\n" for c in codes[:60]))
    with sandbox_in_thread(Faults(rate_limit=25)) as api:
        url = ["--api-url", api.url]
        assert _command("run", str(sheet), *url)[0] == 0
        code, audit = _command("audit", str(sheet), *url)
        assert code == 0
        code, revoke = _command("revoke", str(leaked), *url, "--yes")
        assert code == 0
        code, undo = _command("undo", str(sheet), *url, "--yes")
        assert code == 0
        assert api.state.codes == {}
        created, deleted = list(api.state.created_log), list(api.state.deleted_log)
    assert sorted(created) == codes  # every code created once...
    assert len(deleted) == len(set(deleted)) == 120  # ...and deleted once
    for summary in (audit, revoke, undo):
        pace = summary["pace"]
        assert isinstance(pace, float)
        # Each command starts while the one before still fills the server's window: its first
        # 429 says nothing about the limit (taken at its word, it held revoke at 1/s).
        assert 5 <= pace <= 25
