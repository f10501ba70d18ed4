"""What a person sees after a command, through the real CLI: the report page in headless
Chromium, results as xlsx, and the webhook notification (one per run that did something)."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from importer.cli import main
from tests.browser import render
from tests.outputs.test_notify import _closed_port, sink
from tests.servers import sandbox_in_thread

CANARY = "CANARY-outputs-key-9d8c7b6a"
VIDEO = "5a1b2c3d4e5f60718293a4b5"


def messy(path: Path) -> Path:
    path.write_text(
        "Promo Code,Expires,Video ID\n"
        f"00123,2031-06-30,{VIDEO}\n"
        f'=HYPERLINK("x"),2031-06-30,{VIDEO}\n'
        f"<script>alert(1)</script>,2031-06-30,{VIDEO}\n"
        f"GOOD-2,2031-06-30,{VIDEO}\n"
        f"GOOD-3,,{VIDEO}\n"
        f"MISSING-VIDEO,2031-06-30,{'0' * 24}\n"
        f"GOOD-2,2031-06-30,{VIDEO}\n"
    )
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", CANARY)


@pytest.mark.usefixtures("env")
def test_run_writes_a_page_xlsx_results_and_one_notification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = messy(tmp_path / "messy.csv")
    page = tmp_path / "run.html"
    results = tmp_path / "run.results.xlsx"
    with sandbox_in_thread(key=CANARY) as api, sink() as hook:
        monkeypatch.setenv("ZYPE_NOTIFY_URL", hook.url)
        command = ["run", str(source), "--api-url", api.url, "--no-progress",
                   "--results", str(results), "--html", str(page)]  # fmt: skip
        assert main(command) == 1
        assert len(hook.posts) == 1
        payload = json.loads(hook.posts[0][2])
        assert payload["summary"]["counts"]["created"] == 2
        assert payload["summary"]["counts"]["invalid"] == 4
        assert payload["summary"]["counts"]["rejected"] == 1
        assert "zype-import run" in payload["text"]
        # A rerun with nothing left to do stays quiet.
        assert main(command) == 1
        assert len(hook.posts) == 1

    html = page.read_text(encoding="utf-8")
    assert CANARY not in html
    assert "<script>alert" not in html
    rendered = render(page, "document.body.innerText")
    assert rendered.problems == []
    assert rendered.requests == [page.resolve().as_uri()]  # nothing loaded from outside
    text = rendered.value
    assert "Video not found" in text  # the API's rejection
    assert "<script>alert(1)</script>" in text or "duplicate" in text.lower()

    book = openpyxl.load_workbook(results)
    sheet = book.active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)  # no formula, whatever a cell holds
    codes = [row[2].value for row in sheet.iter_rows(min_row=2)]
    assert "00123" in codes
    assert '=HYPERLINK("x")' in codes


@pytest.mark.usefixtures("env")
def test_a_dead_webhook_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = messy(tmp_path / "messy.csv")
    monkeypatch.setenv("ZYPE_NOTIFY_URL", f"http://127.0.0.1:{_closed_port()}/hooks/T0KEN-secret")
    with sandbox_in_thread(key=CANARY) as api:
        assert main(["run", str(source), "--api-url", api.url, "--no-progress"]) == 1
    assert (tmp_path / "messy.results.csv").exists()


@pytest.mark.usefixtures("env")
def test_undo_and_audit_write_their_page(tmp_path: Path) -> None:
    source = messy(tmp_path / "messy.csv")
    with sandbox_in_thread(key=CANARY) as api:
        assert main(["run", str(source), "--api-url", api.url, "--no-progress"]) == 1
        [first] = [obj for obj in api.state.codes.values() if obj["code"] == "GOOD-2"]
        api.state.redeem(first["_id"])
        for command, extra, code in (("audit", (), 0), ("undo", ("--yes",), 1)):
            page = tmp_path / f"{command}.html"
            args = [command, str(source), "--api-url", api.url, "--no-progress", "--html",
                    str(page), *extra]  # fmt: skip
            assert main(args) == code
            html = page.read_text(encoding="utf-8")
            assert CANARY not in html
            assert "redeemed" in html


@pytest.mark.usefixtures("env")
def test_a_run_refused_by_a_busy_journal_notifies_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importer.journal import open_journal

    source = messy(tmp_path / "messy.csv")
    holder = open_journal(tmp_path / "messy.results.journal")
    try:
        with sink() as hook:
            monkeypatch.setenv("ZYPE_NOTIFY_URL", hook.url)
            assert main(["run", str(source), "--sandbox", "--no-progress"]) == 2
            [(_, _, body)] = hook.posts
            payload = json.loads(body)
            assert "another run holds this journal" in payload["text"]
            assert payload["summary"]["exit_code"] == 2
    finally:
        holder.close()
