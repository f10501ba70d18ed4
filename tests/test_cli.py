"""The command line: exit codes and the one-line messages a user sees."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from importer.cli import build_parser, main
from importer.journal import open_journal
from tests.servers import KEY, sandbox_in_thread

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "promo_codes.csv"
VIDEO = "5a1b2c3d4e5f60718293a4b5"


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    path = tmp_path / "promo.csv"
    path.write_text(f"Promo Code,Expires,Video ID\nSPRING-1,2031-03-01,{VIDEO}\n")
    return path


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


def test_no_command_is_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


@pytest.mark.parametrize("command", ["run", "validate", "status", "cards", "sandbox"])
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["validate", str(missing)]) == 2
    line = _error(capsys)
    assert line.startswith("zype-import: error: ")
    assert str(missing) in line


def test_run_without_key_says_which_variable(
    sheet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ZYPE_API_KEY", raising=False)
    assert main(["run", str(sheet)]) == 2
    assert "ZYPE_API_KEY is not set" in _error(capsys)
    assert not list(sheet.parent.glob("*.journal"))


def test_bad_config_is_exit_2_naming_the_key(
    sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("send:\n  rte: 3\n")
    assert main(["validate", str(sheet), "--config", str(config)]) == 2
    assert f"{config}: unknown key 'send.rte'" in _error(capsys)


def test_bad_sandbox_faults(sheet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(sheet), "--sandbox", "--sandbox-faults", "lag=3"]) == 2
    assert "unknown fault 'lag=3'" in _error(capsys)
    assert main(["run", str(sheet), "--sandbox", "--sandbox-faults", "error_rate=2"]) == 2
    assert "error_rate must be between 0 and 1" in _error(capsys)


def test_journal_held_by_another_run_is_exit_2(
    sheet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)
    holder = open_journal(sheet.with_name("promo.results.journal"))
    try:
        assert main(["run", str(sheet), "--sandbox"]) == 2
        assert "another run holds this journal (pid" in _error(capsys)
    finally:
        holder.close()


def test_validate_exit_codes(sheet: Path, tmp_path: Path) -> None:
    assert main(["validate", str(sheet)]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(f"Promo Code,Expires,Video ID\nSPRING-1,2001-03-01,{VIDEO}\n")
    assert main(["validate", str(bad)]) == 1


def test_a_directory_in_place_of_the_results_file_is_refused_before_sending(
    sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out.csv").mkdir()
    for command in ("run", "validate"):
        args = [command, str(sheet), "--results", str(tmp_path / "out.csv"), "--no-progress"]
        assert main([*args, "--sandbox"] if command == "run" else args) == 2
        message = _error(capsys)
        assert message.endswith("out.csv: is a directory; the results file needs a file name")
    assert not list(tmp_path.glob("*.journal"))  # refused before the journal was opened


def test_results_that_cannot_be_written_after_sending_say_nothing_is_lost(
    sheet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importer.outputs.files

    def disk_full(path: Path, write: object, encoding: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importer.outputs.files, "_atomic_write", disk_full)
    # codes were sent: not "nothing was sent" (2), but stopped part-way (3)
    assert main(["run", str(sheet), "--sandbox", "--no-progress"]) == 3
    error = _error(capsys)
    assert "promo.results.csv: cannot write it (No space left on device)" in error
    assert "every outcome is in the journal" in error
    monkeypatch.undo()
    journal = open_journal(sheet.with_name("promo.results.journal"))
    try:
        assert [e.status for e in journal.entries.values()] == ["created"]
    finally:
        journal.close()


def test_status_after_a_run(
    sheet: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)
    with sandbox_in_thread() as api:
        assert main(["run", str(sheet), "--api-url", api.url, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["status", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "created: 1" in out
    assert "left to do: 0" in out
    assert "finished after" in out


def test_status_without_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--journal", str(tmp_path / "none.journal")]) == 2
    assert "no journal here yet" in _error(capsys)


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "importer", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("zype-import ")


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def test_every_option_and_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for option in _options(build_parser()) - {"--help", "--version"}:
        assert f"`{option}" in readme, option
    for command in ("run", "validate", "undo", "audit", "revoke", "status", "cards", "sandbox"):
        assert f"zype-import {command}" in readme, command


def test_every_issue_code_is_in_the_readme() -> None:
    import re

    from importer.rules import validate

    # Every table in the docstring: the rows between each table's header rule and its end.
    tables = (validate.__doc__ or "").split("=====\n")[2::3]
    documented = [code for t in tables for code in re.findall(r"^([a-z][a-z-]+) ", t, re.M)]
    assert len(documented) == 17
    readme = (ROOT / "README.md").read_text()
    for code in [*documented, "changed-after-create"]:
        assert f"`{code}`" in readme, code


def test_sandbox_command_uses_its_own_key_never_the_real_one() -> None:
    env = {**os.environ, "ZYPE_API_KEY": "REAL-KEY-CANARY-42", "ZYPE_SANDBOX_KEY": "trial-key"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "importer", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert line.startswith("sandbox listening on http://127.0.0.1:")
    assert "(api key: trial-key)" in line
    assert "REAL-KEY-CANARY-42" not in line
