"""Progress: a bar on a terminal, plain log lines at an interval otherwise (cron)."""

from __future__ import annotations

import io
import logging

import pytest

from importer.outputs.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_with_counts_by_status() -> None:
    stream = Terminal()
    bar = Progress(3, stream=stream, interval=0)
    for status in ("created", "created", "rejected"):
        bar.advance(status)
    bar.close()
    text = stream.getvalue()
    assert "\r" in text
    assert "3/3" in text
    assert "created=2" in text
    assert "rejected=1" in text


def test_cron_gets_log_lines_never_bar_fragments(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    caplog.set_level(logging.INFO, logger="importer")
    bar = Progress(4, stream=stream, interval=0)
    for status in ("created", "failed", "created", "created"):
        bar.advance(status)
    bar.close()
    assert stream.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert lines[-1] == "progress: 4/4 done (3 created, 1 failed), " + lines[-1].split(", ")[-1]
    assert len(lines) == 4  # one per advance at interval 0; close adds no repeat


def test_interval_limits_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="importer")
    bar = Progress(1000, stream=io.StringIO(), interval=3600)
    for _ in range(1000):
        bar.advance("created")
    bar.close()
    assert len(caplog.records) == 1  # only the final line


def test_disabled_progress_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="importer")
    stream = Terminal()
    bar = Progress(2, stream=stream, interval=0, enabled=False)
    bar.advance("created")
    bar.close()
    assert stream.getvalue() == ""
    assert caplog.records == []
