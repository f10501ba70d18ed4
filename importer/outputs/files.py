"""Files a person opens afterwards are replaced whole: written beside, fsynced, then renamed.

A reader (Excel, a browser, a monitoring script) never sees half a file, and a run killed while
writing leaves the old file as it was. :func:`check_writable` asks the same question before
anything is sent, so an unwritable output is a usage error (exit 2), not a lost run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from importer.errors import OutputError


def check_writable(path: Path, what: str) -> None:
    """Raise :class:`OutputError` now, before anything is sent, if *path* cannot be written."""
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; the {what} needs a file name")
    try:
        fd, tmp = _temp_beside(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the {what} there ({exc.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def atomic_write(
    path: Path, write: Any, *, encoding: str | None = "utf-8", binary: bool = False
) -> None:
    """Write through *write(handle)* to a temporary file beside *path*, fsync, then rename.

    *handle* is a text file, or with `binary` a binary one (a PDF, a zip). An :class:`OSError`
    (a full disk, a directory in the way) becomes an :class:`OutputError` naming the file; the
    old file, if any, is left as it was, and so is it when *write* raises anything else.
    """
    try:
        _atomic_write(path, write, None if binary else encoding)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write it ({exc.strerror or exc})") from None


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new hidden temporary file in *path*'s folder (made if missing): descriptor, name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def _atomic_write(path: Path, write: Any, encoding: str | None) -> None:
    fd, tmp = _temp_beside(path)
    try:
        opened = (
            os.fdopen(fd, "wb")
            if encoding is None
            else os.fdopen(fd, "w", encoding=encoding, newline="")
        )
        with opened as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
