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


def _run(sheet: Path, url: str) -> dict[str, object]:
    summary = sheet.with_suffix(".summary.json")
    code = main(
        ["run", str(sheet), "--api-url", url, "--rate", "auto", "--no-progress", "-q",
         "--summary", str(summary)]
    )  # fmt: skip
    assert code == 0
    data: dict[str, object] = json.loads(summary.read_text())
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
