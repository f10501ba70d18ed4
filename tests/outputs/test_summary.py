"""The run context's pure parts: the summary, the exit code, the plain-HTTP refusal."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from importer.commands.context import Target
from importer.config import is_loopback
from importer.errors import Interrupted, UsageError
from importer.outputs.summary import Summary, exit_code, write_summary
from importer.sandbox.faults import Faults


def test_summary_lists_the_usual_statuses_and_formats(tmp_path: Path) -> None:
    summary = Summary(
        "run",
        Counter({"created": 3, "invalid": 1}),
        duration=2.0,
        requests=5,
        retries=1,
        lookups=1,
        rate=1.5,
        methods={"POST": 4, "GET": 1},
    )
    data = summary.as_dict()
    assert data["rows"] == 4
    assert data["counts"] == {"created": 3, "invalid": 1, "rejected": 0, "failed": 0, "pending": 0}
    text = summary.lines()
    assert text.splitlines()[0] == "4 result lines: 3 created, 1 invalid"
    assert "5 requests (1 retries, 0 answered 429, 1 lookups) in 2.0 s, 1.5 codes/s" in text
    write_summary(tmp_path / "s.json", data)
    assert json.loads((tmp_path / "s.json").read_text()) == data


@pytest.mark.parametrize(
    ("command", "counts", "stopped", "code"),
    [
        ("run", {"created": 3}, None, 0),
        ("run", {"created": 3, "invalid": 1}, None, 1),
        ("run", {"created": 3, "pending": 1}, None, 3),
        ("run", {"created": 3, "kept": 1}, None, 1),
        ("run", {"created": 3}, Interrupted("x"), 3),
        ("validate", {"created": 3, "invalid": 1}, None, 1),
        ("undo", {"deleted": 3, "not created": 2, "invalid": 1}, None, 0),
        ("undo", {"deleted": 3, "kept": 1}, None, 1),
        ("undo", {"deleted": 3, "pending": 1}, None, 3),
        ("undo", {"would delete": 3, "would keep (redeemed)": 1}, None, 0),
        ("audit", {"available": 3, "redeemed": 2}, None, 0),
        ("audit", {"available": 3, "missing": 1}, None, 1),
        ("audit", {"available": 3, "changed": 1}, None, 1),
    ],
)
def test_exit_code(
    command: str, counts: dict[str, int], stopped: Interrupted | None, code: int
) -> None:
    assert exit_code(command, counts, stopped) == code


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.zype.com", True),
        ("http://127.0.0.1:8808", True),
        ("http://localhost:8808", True),
        ("http://[::1]:8808", True),
        ("http://api.zype.com", False),
        ("http://10.0.0.5:8080/v1", False),
        ("HTTP://example.com", False),
    ],
)
def test_plain_http_only_to_loopback(url: str, allowed: bool) -> None:
    target = Target(url, "k" * 20)
    if allowed:
        target.check()
    else:
        with pytest.raises(UsageError, match="clear text"):
            target.check()


def test_the_key_is_not_in_a_targets_repr() -> None:
    assert "s3cret-canary" not in repr(Target("https://x", "s3cret-canary"))
    sandbox = Target.in_process_sandbox(Faults())
    assert sandbox.api_key not in repr(sandbox)
    sandbox.check()  # the sandbox is always loopback


@pytest.mark.parametrize(("host", "loop"), [("127.0.0.2", True), ("localhost", True), ("x", False)])
def test_is_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop
