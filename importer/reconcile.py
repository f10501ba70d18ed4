"""The results file and the summary: what became of every spreadsheet row.

The results file is rebuilt at the end of every run from the records, the row issues and the
journal, so it is complete even after an interrupted run. It is written for Excel: UTF-8 with a
BOM (Excel only detects UTF-8 with one), and every text cell that Excel would run as a formula
is prefixed with ``'``. It replaces the old file atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from importer.journal import Entry
from importer.models import Record, ResultLine, RowIssue, Status

COLUMNS = (
    "row",
    "status",
    "code",
    "id",
    "error",
    "issue",
    "entitlement_type",
    "entitlement_id",
    "expiration_date",
    "nice_code",
    "attempts",
    "http_status",
)
#: Statuses in the order the summary lists them.
STATUSES = (Status.CREATED, Status.INVALID, Status.REJECTED, Status.FAILED, Status.PENDING)

#: Excel runs a cell starting with one of these as a formula, quoted or not.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def escape(cell: str) -> str:
    """Make a text cell inert in Excel by prefixing ``'`` where it could start a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def record_line(record: Record, entry: Entry | None) -> ResultLine:
    """The result of a valid record, from its journal entry (``None``: not sent yet)."""
    base = {
        "row": record.row,
        "code": record.code,
        "entitlement_type": record.kind,
        "entitlement_id": record.entitlement_id,
        "expiration_date": record.expiration_date,
    }
    if entry is None:
        return ResultLine(status=Status.PENDING, **base)
    status = Status.PENDING if entry.status == Status.SENDING else Status(entry.status)
    error, issue = entry.error, ""
    if status == Status.CREATED and entry.fingerprint != record.fingerprint:
        old_date, old_kind, old_id = entry.fingerprint.split("|")
        if (old_kind, old_id) != (record.kind, record.entitlement_id):
            status, issue = Status.REJECTED, "changed-after-create"
            error = (
                f"this code was already created for {old_kind} {old_id}; the row now names "
                f"{record.kind} {record.entitlement_id}, which was not applied"
            )
        else:
            issue = "changed-after-create"
            error = (
                f"created with expiration {old_date}; the new date {record.expiration_date} "
                "was not applied"
            )
    return ResultLine(
        status=status,
        api_id=entry.api_id,
        error=error,
        issue=issue,
        nice_code=entry.nice_code,
        attempts=entry.attempts,
        http_status=entry.http_status,
        **base,
    )


def issue_line(issue: RowIssue) -> ResultLine:
    """The result of an invalid row."""
    return ResultLine(
        row=issue.row,
        status=Status.INVALID,
        code=issue.value,
        error=issue.message,
        issue=issue.code,
    )


def build_lines(
    records: Sequence[Record], issues: Sequence[RowIssue], entries: Mapping[str, Entry]
) -> Iterator[ResultLine]:
    """Every result line, in input order (records and issues each come in input order)."""
    valid = (record_line(r, entries.get(r.key)) for r in records)
    invalid = (issue_line(i) for i in issues)
    return heapq.merge(valid, invalid, key=lambda line: line.row)


def _cells(line: ResultLine) -> tuple[Any, ...]:
    return (
        line.row,
        line.status.value,
        escape(line.code),
        line.api_id,
        escape(line.error),
        line.issue,
        line.entitlement_type,
        line.entitlement_id,
        line.expiration_date,
        escape(line.nice_code),
        line.attempts or "",
        "" if line.http_status is None else line.http_status,
    )


def write_results(path: str | Path, lines: Iterable[ResultLine]) -> Counter[str]:
    """Write the results CSV atomically; return the count of lines per status."""
    counts: Counter[str] = Counter()

    def rows() -> Iterator[tuple[Any, ...]]:
        for line in lines:
            counts[line.status.value] += 1
            yield _cells(line)

    def write(handle: Any) -> None:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows())

    atomic_write(Path(path), write, encoding="utf-8-sig")
    return counts


def atomic_write(path: Path, write: Any, *, encoding: str = "utf-8") -> None:
    """Write through *write(handle)* to a temporary file beside *path*, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
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


def summarize(counts: Mapping[str, int], **figures: Any) -> dict[str, Any]:
    """The summary as a plain dict (also written as JSON with ``--summary``)."""
    summary: dict[str, Any] = {"rows": sum(counts.values())}
    summary["counts"] = {status.value: counts.get(status.value, 0) for status in STATUSES}
    summary.update(figures)
    return summary


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary as the few lines printed on stderr."""
    counts = summary["counts"]
    parts = ", ".join(f"{counts[s.value]} {s.value}" for s in STATUSES if counts[s.value])
    lines = [f"{summary['rows']} result lines: {parts or 'nothing to do'}"]
    if "requests" in summary:
        lines.append(
            f"{summary['requests']} requests ({summary['retries']} retries, "
            f"{summary['throttled']} answered 429, {summary['lookups']} lookups) "
            f"in {summary['duration']:.1f} s"
            + (f", {summary['rate']:.1f} codes/s" if summary.get("rate") else "")
        )
    for key in ("results", "journal"):
        if summary.get(key):
            lines.append(f"{key}: {summary[key]}")
    return "\n".join(lines)


def write_summary(path: str | Path, summary: Mapping[str, Any]) -> None:
    """Write the summary as JSON, atomically."""
    atomic_write(Path(path), lambda h: json.dump(summary, h, indent=2, sort_keys=True))
