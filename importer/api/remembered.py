"""The pace ``--rate auto`` found, remembered per API between runs.

Finding a limit takes a few seconds of probing; a nightly cron run against the same API should
start where the last one ended. The pace is kept in ``$XDG_CACHE_HOME/zype-import/rates.json``
(``~/.cache/zype-import/`` by default), keyed by the API's URL with any user, password, query
or fragment removed, so no secret can reach the file even from a URL that carried one. The file
is a convenience: one that cannot be read or written costs one warning, never the run.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from yarl import URL

log = logging.getLogger("importer")

FILE_NAME = "rates.json"


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/zype-import``, or ``~/.cache/zype-import`` when it is unset or empty."""
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")) / ".cache")
    return Path(base).expanduser() / "zype-import"


def api_key_of(url: str) -> str:
    """The URL an API is remembered under: scheme, host, port and path only."""
    parsed = URL(url)
    return str(parsed.with_user(None).with_query(None).with_fragment(None)).rstrip("/")


class RememberedPaces:
    """Read and write the remembered paces; every failure is one warning, then silence."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory if directory is not None else cache_dir()) / FILE_NAME
        self._warned = False

    def recall(self, url: str) -> float | None:
        """The pace last found for the API at *url*, or None."""
        entry = self._read().get(api_key_of(url))
        if isinstance(entry, dict):
            pace = entry.get("pace")
            if isinstance(pace, int | float) and not isinstance(pace, bool) and pace > 0:
                return float(pace)
        return None

    def remember(self, url: str, pace: float) -> None:
        """Keep *pace* for the API at *url* (the other APIs' paces stay as they were)."""
        paces = self._read(quiet=True)
        paces[api_key_of(url)] = {"pace": round(pace, 2), "found": int(time.time())}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".rates.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(paces, handle, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self._warn(f"cannot remember the pace found in {self.path} ({exc.strerror or exc})")

    def _read(self, *, quiet: bool = False) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            if not quiet:
                why = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
                self._warn(
                    f"cannot read the remembered paces in {self.path} ({why}); "
                    "starting cautiously instead"
                )
            return {}
        return data if isinstance(data, dict) else {}

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("--rate auto: %s", message)
