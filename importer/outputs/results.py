"""The results file: what became of every spreadsheet row.

The results file is rebuilt at the end of every run from the records, the row issues and the
journal, so it is complete even after an interrupted run. It is written for Excel: UTF-8 with a
BOM (Excel only detects UTF-8 with one), and every text cell that Excel would run as a formula
is prefixed with ``'``. It replaces the old file atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from importer.journal import Entry
from importer.models import Outcome, Record, ResultLine, RowIssue, Status
from importer.outputs.files import atomic_write
from importer.outputs.xlsx import write_results_xlsx

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
#: A result line's cells in :class:`ResultLine`'s order: a ResultLine, or a plain tuple.
Cells = tuple[Any, ...]

#: A journal status as the results file shows it: a row still `sending` (or `deleting`) is not
#: finished.
_SHOWN: dict[str, Status] = {
    s.value: Status.PENDING if s in (Status.SENDING, Status.DELETING) else s for s in Status
}

#: Excel runs a cell starting with one of these as a formula, quoted or not.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def escape(cell: str) -> str:
    """Make a text cell inert in Excel by prefixing ``'`` where it could start a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def record_line(record: Record, entry: Entry | None) -> ResultLine:
    """The result of a valid record, from its journal entry (``None``: not sent yet)."""
    return ResultLine._make(record_cells(record, entry))


def record_cells(record: Record, entry: Entry | None) -> Cells:
    """:func:`record_line` as a plain tuple in :class:`ResultLine`'s order.

    What the writer uses: a million named tuples cost about a second more to build here, since a
    named tuple's constructor runs in Python and a tuple display does not.
    """
    if entry is None:
        return (
            record.row, Status.PENDING, record.code, "", "", "", record.kind,
            record.entitlement_id, record.expiration_date, "", 0, None,
        )  # fmt: skip
    # One unpacking instead of seven attribute reads: 15% of this function at a million rows.
    fingerprint, shown, api_id, nice_code, error, http_status, attempts, *_ = entry
    status = _SHOWN[shown]
    issue = ""
    if status is Status.CREATED and fingerprint != record.fingerprint:
        status, error, issue = _changed_after_create(record, fingerprint)
    return (
        record.row, status, record.code, api_id, error, issue, record.kind,
        record.entitlement_id, record.expiration_date, nice_code, attempts, http_status,
    )  # fmt: skip


def _changed_after_create(record: Record, created: str) -> tuple[Status, str, str]:
    """A created code whose row was edited since: reported, never created again."""
    old_date, old_kind, old_id = created.split("|")
    if (old_kind, old_id) != (record.kind, record.entitlement_id):
        error = (
            f"this code was already created for {old_kind} {old_id}; the row now names "
            f"{record.kind} {record.entitlement_id}, which was not applied"
        )
        return Status.REJECTED, error, "changed-after-create"
    error = (
        f"created with expiration {old_date}; the new date {record.expiration_date} was not applied"
    )
    return Status.CREATED, error, "changed-after-create"


def issue_line(issue: RowIssue) -> ResultLine:
    """The result of an invalid row."""
    return ResultLine(issue.row, Status.INVALID, issue.value, error=issue.message, issue=issue.code)


def verdict_cells(record: Record, entry: Entry, verdict: Outcome) -> Cells:
    """The result of what this run did to an already created code (updated, kept, missing, or
    an update the API refused)."""
    status = _SHOWN[verdict.status.value]
    issue = "" if status is Status.UPDATED else "changed-after-create"
    return (
        record.row, status, record.code, entry.api_id, verdict.error, issue, record.kind,
        record.entitlement_id, record.expiration_date, entry.nice_code, verdict.attempts,
        verdict.http_status,
    )  # fmt: skip


def build_lines(
    records: Sequence[Record],
    issues: Sequence[RowIssue],
    entries: Iterable[Entry | None],
    verdicts: Mapping[str, Outcome] | None = None,
) -> Iterator[Cells]:
    """Every result line's cells, in input order (records and issues each come in order).

    `entries` holds each record's journal entry, in the records' order (``None``: not sent).
    `verdicts` holds what this run did to codes created earlier (``run --update``), by key.
    """
    if verdicts:
        valid: Iterator[Cells] = map(
            lambda record, entry: _with_verdict(record, entry, verdicts), records, entries
        )
    else:
        valid = map(record_cells, records, entries)
    if not issues:
        return valid
    return heapq.merge(valid, map(issue_line, issues), key=itemgetter(0))


def _with_verdict(record: Record, entry: Entry | None, verdicts: Mapping[str, Outcome]) -> Cells:
    verdict = verdicts.get(record.key)
    if (
        verdict is not None
        and entry is not None
        and entry.status == Status.CREATED
        and verdict.status != Status.CREATED
    ):
        return verdict_cells(record, entry, verdict)
    return record_cells(record, entry)


#: A cell needs CSV quoting when it holds the delimiter, a quote or a line break.
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
#: Either of the two reasons to touch a cell, so that the usual cell costs one search.
_SPECIAL = re.compile(r'\A[=+\-@\t\r\n]|[,"\r\n]')


def text_cell(cell: str) -> str:
    """A text cell as it goes into the file: made inert for Excel, then CSV-quoted if needed."""
    # Letters and digits alone (most codes) need neither; isalnum() is a quarter of a search.
    if not cell or cell.isalnum() or _SPECIAL.search(cell) is None:
        return cell
    cell = escape(cell)
    if _NEEDS_QUOTES.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


#: A status as its text: formatting an enum member in an f-string costs twice a dict lookup.
_STATUS_TEXT: dict[Any, str] = {status: status.value for status in Status}


def format_line(line: Cells) -> str:
    """One CSV line (RFC 4180, CRLF) of the results file.

    Written by hand rather than with :mod:`csv`: at a million lines this is three times faster,
    and only the free-text cells (code, error, issue, nice code) can need escaping or quoting;
    the others are numbers, statuses, hex ids and ISO dates.
    """
    (row, status, code, api_id, error, issue, kind, eid, date, nice, attempts, http) = line
    return (
        f"{row},{_STATUS_TEXT[status]},{text_cell(code)},{text_cell(api_id)},{text_cell(error)},"
        f"{text_cell(issue)},{kind},{eid},{date},{text_cell(nice)},{attempts or ''},"
        f"{'' if http is None else http}\r\n"
    )


def write_results(path: str | Path, lines: Iterable[Cells]) -> Counter[str]:
    """Write the results CSV (or xlsx, for a ``.xlsx`` path) atomically; count lines per status."""
    if Path(path).suffix.lower() == ".xlsx":
        return write_results_xlsx(Path(path), lines, COLUMNS)
    counts: Counter[str] = Counter()

    def write(handle: Any) -> None:
        # The BOM by hand: Python's utf-8-sig encoder runs in Python for every write.
        handle.write("\ufeff" + ",".join(COLUMNS) + "\r\n")
        tally: Counter[Status] = Counter()
        chunk: list[str] = []
        for line in lines:
            tally[line[1]] += 1
            chunk.append(format_line(line))
            if len(chunk) >= 10_000:
                handle.write("".join(chunk))
                chunk.clear()
        handle.write("".join(chunk))
        counts.update({status.value: n for status, n in tally.items()})

    atomic_write(Path(path), write)
    return counts


def write_table(path: str | Path, columns: Sequence[str], lines: Iterable[Cells]) -> Counter[str]:
    """Write lines of another shape than the results' (*columns*, one of them ``status``) the
    same way: CSV with a BOM and Excel-safe text cells, or xlsx for a ``.xlsx`` path; atomically.
    Returns the count of lines per status."""
    if Path(path).suffix.lower() == ".xlsx":
        return write_results_xlsx(Path(path), lines, columns)
    status_at = list(columns).index("status")
    counts: Counter[str] = Counter()

    def write(handle: Any) -> None:
        handle.write("\ufeff" + ",".join(columns) + "\r\n")
        for line in lines:
            counts[str(line[status_at])] += 1
            cells = ("" if cell is None else text_cell(str(cell)) for cell in line)
            handle.write(",".join(cells) + "\r\n")

    atomic_write(Path(path), write)
    return counts
