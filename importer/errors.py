"""The one exception tree of zype-import.

Row problems are *values* (:class:`importer.models.RowIssue`), never exceptions. An exception
means the run, or one request, cannot go on::

    ImporterError                    exit_code
    ├── UsageError                   2  nothing was sent
    │   ├── ConfigError                 bad YAML, unknown key, bad value (names file and key)
    │   ├── InputError                  unreadable spreadsheet, missing column, missing sheet
    │   ├── JournalBusyError            another run holds the journal
    │   └── OutputError                 the results or summary file cannot be written
    ├── JournalError                 2 or 3  the journal cannot be read or written (sqlite3 errors,
    │                                        translated in :mod:`importer.journal` only): 2 when
    │                                        it happens before anything was sent, else 3
    ├── StopRun                      3  stopped part-way; the next run picks up `pending` rows
    │   ├── AuthError                   401/403: the key is wrong, nothing more is sent
    │   ├── ApiUnavailableError         too many consecutive failures, or api.url is not the
    │   │                               API (a 404 to the list call, an HTML page, a redirect)
    │   └── Interrupted                 SIGINT / SIGTERM
    └── ApiError                        one request's outcome, raised inside the sender
        ├── PermanentApiError           never retried
        │   └── RejectedError           422 or another 4xx, with the API's message
        └── TransientApiError           retried with backoff
            ├── RateLimitedError        429, carries Retry-After
            ├── ServerError             5xx: the request may have been applied
            └── TransportError          timeout / connection error, `maybe_sent` says whether
                                        the request may have reached the API

aiohttp's exceptions are caught in exactly one place (:mod:`importer.api.http`, the HTTP boundary)
and turned into these, with every secret removed from the text by :func:`redact`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

# A key's value ends where a URL, a header or the markup around an echoed URL goes on.
_KEY_PARAM = re.compile(r"(?i)(api_key=)[^&#\s'\"<>]+")
_KEY_HEADER = re.compile(r"(?i)(x-zype-key['\"]?\s*[:=]\s*['\"]?)[^'\"\s,;()}<>]+")


#: Secrets shorter than this are removed only where they stand as a key (``api_key=...``,
#: ``x-zype-key: ...``), not wherever the text holds them: a key like ``k`` or ``sandbox`` would
#: otherwise turn "already been taken" into "already been ta***en". Real API keys are far longer.
MIN_SECRET_LENGTH = 8


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return *text* with every secret and every ``api_key=...`` value replaced by ``***``.

    Each secret is removed in every form :func:`secret_forms` gives (raw or percent-encoded), since
    a URL in an error's text carries the key encoded.
    """
    for secret in secrets:
        for form in secret_forms(secret):
            if len(form) >= MIN_SECRET_LENGTH:
                text = text.replace(form, "***")
    text = _KEY_PARAM.sub(r"\1***", text)
    return _KEY_HEADER.sub(r"\1***", text)


def secret_forms(secret: str) -> tuple[str, ...]:
    """*secret* as it may appear in text: raw, or percent-encoded as in a URL (``%2B``, ``+``).

    Longest first, so replacing them in order never leaves part of a longer form behind.
    """
    if not secret:
        return ()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    return tuple(sorted(forms, key=len, reverse=True))


def names_a_key(text: bytes) -> bool:
    """Whether *text* may hold a key the way :func:`redact`'s patterns find it (cheap test)."""
    lowered = text.lower()
    return b"api_key" in lowered or b"x-zype-key" in lowered


class ImporterError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 2


class UsageError(ImporterError):
    """Nothing was sent: bad usage, config or input."""

    exit_code = 2


class ConfigError(UsageError):
    """The config file or an option is wrong; the message names the file and the key."""


class InputError(UsageError):
    """The spreadsheet cannot be read as a table of codes."""


class JournalBusyError(UsageError):
    """Another run holds the journal (cron overlap)."""


class OutputError(UsageError):
    """The results or summary file cannot be written.

    Checked before anything is sent; should writing still fail at the end of a run, every
    outcome is in the journal and the message says so: the same command writes the file again.
    """


class JournalError(ImporterError):
    """The journal cannot be read or written; the message names the file and the cause.

    The exit code says whether anything was sent: 2 when the journal failed before the first
    request (a file that is not a journal, a locked or unreadable one), 3 once requests went
    out (a full disk mid-run): every code is still created at most once, since a row is marked
    before its request leaves, and the rerun looks up whatever was in flight.
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StopRun(ImporterError):
    """The run stopped part-way; rows not done stay `pending` for the next run."""

    exit_code = 3


class AuthError(StopRun):
    """The API refused the key (401/403)."""


class ApiUnavailableError(StopRun):
    """The API kept failing; the run stopped rather than hammer it."""


class Interrupted(StopRun):
    """SIGINT or SIGTERM."""


class ApiError(ImporterError):
    """The outcome of one request that did not create a code."""

    exit_code = 1

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class PermanentApiError(ApiError):
    """Sending the same request again would get the same answer."""


class RejectedError(PermanentApiError):
    """The API refused the code (422 or another 4xx) with a message."""


class TransientApiError(ApiError):
    """Worth retrying after a pause."""

    #: True when the API may have applied the request although no success came back, so the
    #: code must be looked up before it is sent again.
    maybe_sent = False


class RateLimitedError(TransientApiError):
    """429 Too Many Requests."""

    def __init__(self, message: str, *, retry_after: float | None, http_status: int = 429) -> None:
        super().__init__(message, http_status=http_status)
        self.retry_after = retry_after


class ServerError(TransientApiError):
    """5xx: the API may have created the code before it failed."""

    maybe_sent = True


class TransportError(TransientApiError):
    """Timeout or connection error; already redacted."""

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
