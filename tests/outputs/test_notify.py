"""The end-of-run notification: what is said, when, and a webhook that is down costs nothing.

The sink is a real HTTP server on loopback in a thread (the notifier is synchronous)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from importer.config import NotifyConfig, Settings, load_settings
from importer.errors import ConfigError
from importer.outputs import notify as notify_module
from importer.outputs.notify import message, notify, notify_run, should_notify, webhook_url

TOKEN = "T0CANARY/B0CANARY/xoxb7f3e9a1bWEBHOOK"
API_KEY = "CANARY-api-key-5e1d77"

SUMMARY: dict[str, Any] = {
    "command": "run",
    "input": "promo.csv",
    "rows": 124,
    "counts": {"created": 120, "invalid": 3, "rejected": 1, "failed": 0, "pending": 0},
    "requests": 125,
    "retries": 4,
    "throttled": 2,
    "lookups": 1,
    "duration": 13.37,
    "rate": 8.98,
    "stopped": None,
    "results": "out/promo.results.csv",
    "journal": "out/promo.results.journal",
}


@dataclass
class Sink:
    """A webhook on loopback: what it received, and how it answers."""

    url: str
    status: int = 200
    delay: float = 0.0
    location: str = ""
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@contextlib.contextmanager
def sink(status: int = 200, delay: float = 0.0, location: str = "") -> Iterator[Sink]:
    box: list[Sink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            box[0].posts.append((self.path, dict(self.headers), body))
            time.sleep(box[0].delay)
            self.send_response(box[0].status)
            if box[0].location:
                self.send_header("Location", box[0].location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:
            box[0].posts.append((self.path, dict(self.headers), b"GET"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output to the notifier's own lines

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.append(
        Sink(f"http://127.0.0.1:{server.server_port}/services/{TOKEN}", status, delay, location)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (TOKEN, "B0CANARY", "xoxb7f3e9a1bWEBHOOK", API_KEY):
        assert secret not in text


# ---- what is said, and when ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "exit_code", "expected"),
    [
        ({"requests": 125}, 0, True),  # sent and created
        ({"requests": 0, "lookups": 2}, 0, True),  # settled codes whose answers were lost
        ({"requests": 0, "lookups": 0}, 0, False),  # a rerun with nothing left to do
        ({}, 0, False),  # validate of a clean sheet
        ({}, 1, False),  # validate found invalid rows: nothing was done
        ({"requests": 0}, 1, False),  # a rerun: invalid rows remain, nothing to do
        ({"requests": 4}, 1, True),  # sent, and some rows need attention
        ({"requests": 0}, 2, True),  # bad config, unreadable sheet, journal busy
        ({"requests": 3}, 3, True),  # stopped part-way
        ({"requests": True}, 0, False),  # not a number
    ],
)
def test_should_notify(summary: dict[str, Any], exit_code: int, expected: bool) -> None:
    assert should_notify(summary, exit_code) is expected


def test_message_has_a_text_line_and_the_numbers() -> None:
    payload = message(SUMMARY, 1)
    assert payload["text"] == (
        "zype-import run promo.csv: 120 created, 3 invalid, 1 rejected; 125 requests "
        "(4 retries, 2 answered 429) in 13.4 s (exit 1: some rows need attention)"
    )
    numbers = payload["summary"]
    assert numbers["counts"] == SUMMARY["counts"]
    assert {k: numbers[k] for k in ("rows", "requests", "retries", "throttled", "lookups")} == {
        "rows": 124,
        "requests": 125,
        "retries": 4,
        "throttled": 2,
        "lookups": 1,
    }
    assert numbers["exit_code"] == 1
    assert numbers["command"] == "run"
    json.dumps(payload)  # plain JSON


@pytest.mark.parametrize(
    ("summary", "exit_code", "text"),
    [
        (
            {"command": "validate", "input": "a.xlsx", "counts": {"created": 0, "invalid": 2}},
            1,
            "zype-import validate a.xlsx: 2 invalid (exit 1: some rows need attention)",
        ),
        (
            {"command": "run", "results": "out/r.csv", "counts": {"created": 0}, "requests": 9,
             "retries": 9, "throttled": 0, "stopped": "the API refused the key"},
            3,
            "zype-import run out/r.csv: nothing to do; 9 requests (9 retries, 0 answered 429); "
            "stopped: the API refused the key (exit 3: stopped part-way; the next run finishes "
            "the job)",
        ),
        (
            {"command": "undo", "input": "p.csv", "counts": {"deleted": 5, "kept": 1}},
            1,
            "zype-import undo p.csv: 5 deleted, 1 kept (exit 1: some rows need attention)",
        ),
        ({}, 2, "zype-import run: nothing to do (exit 2: nothing was sent)"),
        ({"counts": {"created": 1_234_567}}, 7, "zype-import run: 1,234,567 created (exit 7)"),
    ],
)  # fmt: skip
def test_message_text(summary: dict[str, Any], exit_code: int, text: str) -> None:
    assert message(summary, exit_code)["text"] == text


def test_webhook_url_from_the_configured_variable() -> None:
    config = NotifyConfig(url_env="MY_HOOK")
    assert webhook_url(config, {"MY_HOOK": " https://h.example/x \n"}) == "https://h.example/x"
    assert webhook_url(config, {"ZYPE_NOTIFY_URL": "https://h.example/x"}) is None
    assert webhook_url(config, {"MY_HOOK": "  "}) is None


# ---- sending -------------------------------------------------------------------------------


def test_a_live_sink_gets_exactly_one_post_with_the_numbers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with sink() as hook:
        assert notify(hook.url, message(SUMMARY, 1), timeout=5, secrets=[API_KEY]) is True
    assert len(hook.posts) == 1
    path, headers, body = hook.posts[0]
    assert path == f"/services/{TOKEN}"
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["text"].startswith("zype-import run promo.csv: 120 created, 3 invalid")
    assert payload["summary"]["counts"]["created"] == 120
    assert caplog.records == []


def test_a_dead_sink_returns_false_fast_with_one_redacted_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/services/{TOKEN}"
    started = time.monotonic()
    assert notify(url, message(SUMMARY, 0), timeout=5, secrets=[API_KEY]) is False
    assert time.monotonic() - started < 2
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("notification not sent to http://127.0.0.1/***: ")
    assert "refused" in record.getMessage().lower()
    _no_secret_logged(caplog)


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_an_error_answer_is_one_warning(caplog: pytest.LogCaptureFixture, status: int) -> None:
    with sink(status=status) as hook:
        assert notify(hook.url, {"text": "x"}, timeout=5, secrets=[]) is False
    assert len(hook.posts) == 1  # never retried: a second ping would be a duplicate
    assert [r.getMessage() for r in caplog.records] == [
        f"notification not sent to http://127.0.0.1/***: it answered HTTP {status}"
    ]
    _no_secret_logged(caplog)


def test_a_redirect_is_not_followed(caplog: pytest.LogCaptureFixture) -> None:
    with sink() as target, sink(status=302, location=target.url) as hook:
        assert notify(hook.url, {"text": "x"}, timeout=5, secrets=[]) is False
    assert target.posts == []
    assert "HTTP 302" in caplog.records[0].getMessage()
    _no_secret_logged(caplog)


def test_a_slow_sink_times_out(caplog: pytest.LogCaptureFixture) -> None:
    with sink(delay=2.0) as hook:
        started = time.monotonic()
        assert notify(hook.url, {"text": "x"}, timeout=0.3, secrets=[]) is False
        assert time.monotonic() - started < 1.5
    assert "timed out" in caplog.records[0].getMessage()
    _no_secret_logged(caplog)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"http://hooks.example.com/services/{TOKEN}", "plain http:// would expose its token"),
        (f"http://10.0.0.5/services/{TOKEN}", "plain http:// would expose its token"),
        (f"ftp://hooks.example.com/{TOKEN}", "not an http:// or https:// URL"),
        (f"hooks.example.com/services/{TOKEN}", "not an http:// or https:// URL"),
        (f"https://[::1/services/{TOKEN}", "Invalid IPv6 URL"),
    ],
)
def test_a_url_a_secret_may_not_go_to_is_refused_without_connecting(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    def no_connection(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    assert notify(url, {"text": "x"}, timeout=5, secrets=[]) is False
    assert len(caplog.records) == 1
    assert reason in caplog.records[0].getMessage()
    _no_secret_logged(caplog)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_plain_http_to_loopback_is_allowed(host: str) -> None:
    with sink() as hook:
        url = hook.url.replace("127.0.0.1", host)
        assert notify(url, {"text": "x"}, timeout=5, secrets=[]) is True
    assert len(hook.posts) == 1


def test_a_proxy_in_the_environment_is_not_used_for_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("no_proxy", "")
    with sink() as hook:
        assert notify(hook.url, {"text": "x"}, timeout=5, secrets=[]) is True
    assert len(hook.posts) == 1


def test_never_raises_whatever_goes_wrong(caplog: pytest.LogCaptureFixture) -> None:
    with sink() as hook:
        assert notify(hook.url, {"text": object()}, timeout=5, secrets=[]) is False
    assert hook.posts == []
    assert "TypeError" in caplog.records[0].getMessage()


# ---- the whole step, as a command calls it -------------------------------------------------


def test_notify_run_sends_once_when_there_was_something_to_say(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with sink() as hook:
        environ = {"ZYPE_NOTIFY_URL": hook.url}
        assert notify_run(SUMMARY, 1, NotifyConfig(), secrets=[API_KEY], environ=environ)
    assert len(hook.posts) == 1
    assert json.loads(hook.posts[0][2])["summary"]["exit_code"] == 1
    _no_secret_logged(caplog)


def test_notify_run_is_quiet_when_there_was_nothing_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    finished = {**SUMMARY, "requests": 0, "lookups": 0}
    with sink() as hook:
        environ = {"ZYPE_NOTIFY_URL": hook.url}
        assert not notify_run(finished, 0, NotifyConfig(), environ=environ)
    assert hook.posts == []
    assert caplog.records == []


def test_notify_run_without_the_variable_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_send(*args: Any, **kwargs: Any) -> bool:
        raise AssertionError("notify was called")

    monkeypatch.setattr(notify_module, "notify", no_send)
    monkeypatch.delenv("ZYPE_NOTIFY_URL", raising=False)
    assert not notify_run(SUMMARY, 3, NotifyConfig())


def test_notify_run_with_a_dead_sink_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"ZYPE_NOTIFY_URL": f"http://127.0.0.1:{_closed_port()}/{TOKEN}"}
    config = NotifyConfig(timeout=1.0)
    assert notify_run(SUMMARY, 0, config, secrets=[API_KEY], environ=environ) is False
    assert len(caplog.records) == 1
    _no_secret_logged(caplog)


# ---- config --------------------------------------------------------------------------------


def test_notify_defaults() -> None:
    assert Settings().notify == NotifyConfig(url_env="ZYPE_NOTIFY_URL", timeout=5.0)


def test_notify_section_in_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("notify:\n  url_env: CAMPAIGN_HOOK\n  timeout: 2\n")
    assert load_settings(path).notify == NotifyConfig(url_env="CAMPAIGN_HOOK", timeout=2.0)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("notify:\n  url: https://x\n", "unknown key 'notify.url'"),
        ("notify:\n  url_env: 'MY HOOK'\n", "'notify.url_env' must be an environment variable"),
        ("notify:\n  url_env: ''\n", "'notify.url_env' must be an environment variable"),
        ("notify:\n  url_env: 5\n", "'notify.url_env' must be a string"),
        ("notify:\n  timeout: 0\n", "'notify.timeout' must be greater than 0"),
        ("notify:\n  timeout: soon\n", "'notify.timeout' must be a number"),
    ],
)
def test_bad_notify_config_names_file_and_key(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: ")
    assert error in str(info.value)
