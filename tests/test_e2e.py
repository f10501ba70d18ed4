"""End to end: spreadsheet in, real HTTP on loopback, results file out, compared with the server."""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

import pytest

from importer.cli import main
from importer.sandbox import Faults
from tests.servers import KEY, independent_api, sandbox_in_thread

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "samples" / "promo_codes.csv"
SAMPLE_XLSX = ROOT / "samples" / "promo_codes.xlsx"
KINDS = ("Video ID", "Playlist ID", "Plan ID", "Pass Plan ID")


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def clean_csv(path: Path, rows: int) -> Path:
    """A clean sheet: codes given, all four entitlement kinds, dates far ahead."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Promo Code", "Expires", *KINDS])
        for n in range(rows):
            ids = [""] * 4
            ids[n % 4] = secrets.token_hex(12)
            writer.writerow([f"BULK-{n:05d}", "2031-06-30", *ids])
    return path


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ZYPE_API_KEY", KEY)
    return KEY


def run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--no-progress"])


@pytest.mark.usefixtures("api_key")
def test_500_clean_rows_against_an_independent_api(tmp_path: Path) -> None:
    sheet = clean_csv(tmp_path / "bulk.csv", 500)
    results = tmp_path / "bulk.results.csv"
    with independent_api() as api:
        code = run(sheet, "--api-url", api.url, "--rate", "2000", "--concurrency", "16")
        assert code == 0
        lines = read_results(results)
        assert len(lines) == 500
        assert {line["status"] for line in lines} == {"created"}
        assert len(api.state.codes) == 500
        for line in lines:
            assert line["id"] == api.state.codes[line["code"].upper()]["_id"]
        assert [int(line["row"]) for line in lines] == list(range(2, 502))
        assert api.state.posts == 500

        assert run(sheet, "--api-url", api.url) == 0  # a finished job: nothing sent again
        assert api.state.posts == 500
        assert api.state.gets == 1  # the probe of api.url before the first run's POSTs
        assert read_results(results) == lines  # rebuilt from the journal alone, ids and all


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize("sample", [SAMPLE_CSV, SAMPLE_XLSX], ids=["csv", "xlsx"])
def test_sample_against_the_sandbox_matches_what_the_server_holds(
    tmp_path: Path, sample: Path
) -> None:
    results = tmp_path / "results.csv"
    with sandbox_in_thread() as api:
        code = run(sample, "--api-url", api.url, "--results", results, "--rate", "500")
        lines = read_results(results)
        assert code == 1  # the sample has bad rows on purpose
        statuses = {line["status"] for line in lines}
        assert statuses <= {"created", "invalid", "rejected"}
        created = [line for line in lines if line["status"] == "created"]
        assert len(created) == len(api.state.codes)
        for line in created:
            held = api.state.find_code(line["code"])
            assert held is not None
            assert line["id"] == held["_id"]
            assert held[line["entitlement_type"] + "_id"] == line["entitlement_id"]
            assert held["expiration_date"].startswith(line["expiration_date"])
        assert all(line["issue"] and line["error"] for line in lines if line["status"] == "invalid")
        rejected = [line for line in lines if line["status"] == "rejected"]
        assert rejected
        assert all(line["entitlement_id"] == "0" * 24 for line in rejected)
        rows = [int(line["row"]) for line in lines]
        assert rows == sorted(rows)

        posts = api.state.posts
        assert run(sample, "--api-url", api.url, "--results", results) == 1
        assert api.state.posts == posts  # rerun: created and unchanged rejected rows not resent
        assert read_results(results) == lines


def test_sandbox_demo_needs_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ZYPE_API_KEY", raising=False)
    results = tmp_path / "demo.csv"
    summary = tmp_path / "demo.json"
    code = run(SAMPLE_CSV, "--sandbox", "--results", results, "--summary", summary, "--rate", "500")
    assert code == 1
    err = capsys.readouterr().err
    assert "result lines:" in err
    assert summary.exists()
    assert any(line["status"] == "created" for line in read_results(results))


@pytest.mark.usefixtures("api_key")
def test_generated_codes_are_kept_across_reruns(tmp_path: Path) -> None:
    sheet = tmp_path / "gen.csv"
    video = secrets.token_hex(12)
    sheet.write_text(
        f"Code,Expires,Video ID,Qty\n,2031-01-01,{video},3\nOWN-1,2031-01-01,{video},\n"
    )
    results = tmp_path / "gen.results.csv"
    with sandbox_in_thread() as api:
        assert run(sheet, "--api-url", api.url) == 0
        first = read_results(results)
        assert [line["row"] for line in first] == ["2", "2", "2", "3"]
        generated = [line["code"] for line in first[:3]]
        assert len(set(generated)) == 3
        assert sorted(api.state.codes) == sorted([*generated, "OWN-1"])
        assert run(sheet, "--api-url", api.url) == 0
        assert [line["code"] for line in read_results(results)[:3]] == generated
        assert len(api.state.created_log) == 4


@pytest.mark.usefixtures("api_key")
def test_faulty_api_still_creates_every_code_exactly_once(tmp_path: Path) -> None:
    sheet = clean_csv(tmp_path / "faulty.csv", 200)
    faults = Faults(error_rate=0.05, reset_rate=0.05, lost_rate=0.05, seed=7)
    with sandbox_in_thread(faults) as api:
        code = run(
            sheet,
            "--api-url",
            api.url,
            "--rate",
            "2000",
            "--concurrency",
            "8",
            "--config",
            _fast_retries(tmp_path),
        )
        lines = read_results(tmp_path / "faulty.results.csv")
        assert code == 0, {line["status"] for line in lines}
        assert len(api.state.created_log) == len(set(api.state.created_log)) == 200
        assert api.state.faults_injected > 0
        for line in lines:
            assert line["id"] == api.state.find_code(line["code"])["_id"]


@pytest.mark.usefixtures("api_key")
def test_wrong_key_stops_at_once_with_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZYPE_API_KEY", "WRONG-CANARY-KEY-0000")
    sheet = clean_csv(tmp_path / "bulk.csv", 100)
    with sandbox_in_thread() as api:
        code = run(sheet, "--api-url", api.url, "--rate", "1000", "--concurrency", "4")
        assert code == 3
        assert api.state.posts <= 4
    lines = read_results(tmp_path / "bulk.results.csv")
    assert {line["status"] for line in lines} == {"pending"}
    err = capsys.readouterr().err
    assert "refused the key" in err
    assert "WRONG-CANARY-KEY-0000" not in err
    for path in tmp_path.iterdir():
        assert b"WRONG-CANARY-KEY-0000" not in path.read_bytes(), path


def _fast_retries(tmp_path: Path) -> Path:
    config = tmp_path / "fast.yaml"
    config.write_text("send:\n  backoff_initial: 0.01\n  backoff_max: 0.05\n  attempts: 10\n")
    return config


def test_validate_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZYPE_API_KEY", raising=False)
    results = tmp_path / "checked.csv"
    code = main(["validate", str(SAMPLE_CSV), "--results", str(results)])
    assert code == 1
    lines = read_results(results)
    assert {line["status"] for line in lines} == {"pending", "invalid"}
    assert not list(tmp_path.glob("*.journal"))
