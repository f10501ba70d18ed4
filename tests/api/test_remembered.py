"""The remembered paces: per API, never a secret, and a bad file costs a warning, never the run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from importer.api.remembered import RememberedPaces, api_key_of, cache_dir


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"XDG_CACHE_HOME": "/var/cache/me", "HOME": "/home/me"}, "/var/cache/me/zype-import"),
        ({"XDG_CACHE_HOME": "", "HOME": "/home/me"}, "/home/me/.cache/zype-import"),
        ({"HOME": "/home/me"}, "/home/me/.cache/zype-import"),
    ],
)
def test_the_cache_lives_where_xdg_says(environ: dict[str, str], expected: str) -> None:
    assert cache_dir(environ) == Path(expected)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://api.zype.com", "https://api.zype.com"),
        ("https://api.zype.com/", "https://api.zype.com"),
        ("https://user:CANARY@api.zype.com/v1?api_key=CANARY#x", "https://api.zype.com/v1"),
        ("http://127.0.0.1:8808", "http://127.0.0.1:8808"),
    ],
)
def test_an_api_is_known_by_its_url_without_secrets(url: str, key: str) -> None:
    assert api_key_of(url) == key


def test_a_pace_is_remembered_per_api(tmp_path: Path) -> None:
    paces = RememberedPaces(tmp_path)
    assert paces.recall("https://a.example") is None
    paces.remember("https://a.example", 48.123)
    paces.remember("https://b.example?api_key=CANARY", 9.0)
    again = RememberedPaces(tmp_path)
    assert again.recall("https://a.example/") == 48.12
    assert again.recall("https://b.example") == 9.0
    assert "CANARY" not in paces.path.read_text()


@pytest.mark.parametrize("content", ["{not json", '["a list"]', '{"https://a.example": 5}'])
def test_a_damaged_file_is_a_warning_and_a_cautious_start(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    paces = RememberedPaces(tmp_path)
    paces.path.write_text(content)
    with caplog.at_level(logging.WARNING, "importer"):
        assert paces.recall("https://a.example") is None
        paces.remember("https://a.example", 20.0)  # replaces the damaged file
    assert RememberedPaces(tmp_path).recall("https://a.example") == 20.0
    assert len(caplog.records) <= 1


def test_an_unwritable_cache_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    paces = RememberedPaces(blocker / "zype-import")  # a folder inside a file: never writable
    with caplog.at_level(logging.WARNING, "importer"):
        paces.remember("https://a.example", 20.0)
        paces.remember("https://a.example", 21.0)
        assert paces.recall("https://a.example") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"--rate auto: cannot remember the pace found in {paces.path} (Not a directory)"
    ]
