"""``zype-import audit``: what Zype holds now for every row of the sheet; no write request.

For every code the journal created it reads the live state with list calls
(:mod:`importer.api.live`, about N/100 requests) and compares it with what the journal recorded:
``available``, ``redeemed`` (with ``redeemed_at``), ``expired``, ``missing`` (Zype no longer
holds it), or ``not created``; ``changed`` says what differs when Zype's code, date or
entitlement is not what was created (someone edited it in Zype's admin). ``--expiring-within``
marks unredeemed codes that expire within that many days.

The audit file (``<input>.audit.csv`` by default) is Excel-safe like the results file.
"""

from __future__ import annotations

import collections
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from importer.api.live import read_live
from importer.api.wire import LiveCode
from importer.commands.context import Context, Paths, Target
from importer.config import Settings
from importer.errors import OutputError
from importer.journal import Created, Entry
from importer.models import Record, RowIssue, Status
from importer.outputs.files import atomic_write
from importer.outputs.results import Cells, text_cell
from importer.rules.checked import load_checked

COLUMNS = (
    "row",
    "state",
    "code",
    "id",
    "redeemed_at",
    "zype_expiration_date",
    "zype_entitlement_type",
    "zype_entitlement_id",
    "changed",
    "expiring_soon",
    "expiration_date",
    "entitlement_type",
    "entitlement_id",
    "note",
)


class AuditLine(NamedTuple):
    """One line of the audit file, in :data:`COLUMNS` order."""

    row: int
    state: str
    code: str
    api_id: str = ""
    redeemed_at: str = ""
    zype_expiration_date: str = ""
    zype_kind: str = ""
    zype_entitlement_id: str = ""
    changed: str = ""
    expiring_soon: str = ""
    expiration_date: str = ""
    kind: str = ""
    entitlement_id: str = ""
    note: str = ""


def differences(recorded: Record, live: LiveCode) -> str:
    """What Zype holds that differs from what the journal recorded as created ("" if nothing)."""
    diffs = []
    if live.code and live.code.casefold() != recorded.code.casefold():
        diffs.append(f"code {recorded.code} -> {live.code}")
    if live.expiration_date != recorded.expiration_date:
        diffs.append(f"expiration {recorded.expiration_date} -> {live.expiration_date or 'none'}")
    if (live.kind, live.entitlement_id) != (recorded.kind, recorded.entitlement_id.lower()):
        diffs.append(
            f"entitlement {recorded.kind} {recorded.entitlement_id} ->"
            f" {live.kind or 'none'} {live.entitlement_id}".rstrip()
        )
    return "; ".join(diffs)


def audit_line(
    code: Created, live: LiveCode | None, today: date, expiring_within: int | None
) -> AuditLine:
    """One created code's line (pure: table-tested)."""
    recorded = code.record
    base = AuditLine(
        recorded.row,
        Status.MISSING.value,
        recorded.code,
        code.api_id,
        expiration_date=recorded.expiration_date,
        kind=recorded.kind,
        entitlement_id=recorded.entitlement_id,
    )
    if live is None:
        return base._replace(note="Zype no longer holds this code")
    soon = ""
    if expiring_within is not None and not live.redeemed and live.expiration_date:
        expires = date.fromisoformat(live.expiration_date)
        if today <= expires <= today + timedelta(days=expiring_within):
            soon = f"in {(expires - today).days} days"
    note = "an undo of this code did not finish" if code.status == Status.DELETING else ""
    return base._replace(
        state=live.state,
        redeemed_at=live.redeemed_at,
        zype_expiration_date=live.expiration_date,
        zype_kind=live.kind,
        zype_entitlement_id=live.entitlement_id,
        changed=differences(recorded, live),
        expiring_soon=soon,
        note=note,
    )


def audit_lines(
    records: Sequence[Record],
    issues: Sequence[RowIssue],
    entries: Mapping[str, Entry],
    held: Sequence[Created],
    live: Mapping[str, LiveCode | None],
    today: date,
    expiring_within: int | None,
) -> list[AuditLine]:
    """Every row of the sheet, and every created code no longer in it, in row order."""
    by_key = {code.record.key: code for code in held}
    lines: list[AuditLine] = []
    for record in records:
        code = by_key.pop(record.key, None)
        if code is None:
            entry = entries.get(record.key)
            note = "" if entry is None else f"journal: {entry.status}"
            lines.append(
                AuditLine(
                    record.row, Status.NOT_CREATED.value, record.code,
                    expiration_date=record.expiration_date, kind=record.kind,
                    entitlement_id=record.entitlement_id, note=note,
                )
            )  # fmt: skip
        else:
            lines.append(audit_line(code, live.get(code.api_id), today, expiring_within))
    for issue in issues:
        lines.append(
            AuditLine(
                issue.row, Status.NOT_CREATED.value, issue.value, note=f"invalid: {issue.message}"
            )
        )
    for code in by_key.values():  # created by an earlier version of the sheet
        line = audit_line(code, live.get(code.api_id), today, expiring_within)
        lines.append(line._replace(note=(line.note + "; no longer in the sheet").lstrip("; ")))
    lines.sort(key=lambda line: line.row)
    return lines


def report_cells(line: AuditLine) -> Cells:
    """An audit line in the results' column order, for the report page: a changed code is
    listed as ``changed`` with what differs."""
    state = "changed" if line.changed else line.state
    return (
        line.row, state, line.code, line.api_id, line.changed or line.note, "", line.kind,
        line.entitlement_id, line.expiration_date, "", 0, None,
    )  # fmt: skip


def write_audit(path: Path, lines: Iterable[AuditLine]) -> Counter[str]:
    """Write the audit CSV atomically (UTF-8 with BOM, Excel-safe cells); count the states."""
    counts: Counter[str] = Counter()

    def write(handle: Any) -> None:
        handle.write("\ufeff" + ",".join(COLUMNS) + "\r\n")
        for line in lines:
            counts[line.state] += 1
            handle.write(",".join(text_cell(str(cell)) for cell in line) + "\r\n")

    atomic_write(path, write)
    return counts


def audit_file(
    paths: Paths,
    settings: Settings,
    target: Target,
    *,
    today: date,
    output: Path | None = None,
    expiring_within: int | None = None,
    stream: TextIO | None = None,
    quiet: bool = False,
    progress: bool = True,
) -> int:
    """Audit every row; 0 when Zype holds every created code as recorded, 1 when any is
    missing or changed, 3 when stopped part-way."""
    ctx = Context("audit", settings, target, paths, stream=stream, quiet=quiet, progress=progress)
    checked = load_checked(paths.input, settings.input, today)
    out = output or paths.input.with_name(f"{paths.input.stem}.audit.csv")
    ctx.check_outputs((out, "audit file"))
    with ctx.opened(paths.journal, str(paths.input)) as journal:
        held = journal.created()
        concurrency = settings.send.concurrency
        live = (
            ctx.engine(lambda runner: read_live(runner, held, concurrency)) if held else {}
        ) or {}
        if ctx.stopped is not None:
            live = {}
        lines = audit_lines(
            checked.records, checked.issues, journal.entries, held, live, today, expiring_within
        )
        if ctx.stopped is not None:
            lines = [
                line._replace(state="unknown", note="the audit stopped") if line.api_id else line
                for line in lines
            ]
        try:
            counts = write_audit(out, lines)
            collections.deque(ctx.listing(map(report_cells, lines)), maxlen=0)  # for the page
        except OutputError as exc:
            raise ctx.output_failed(exc, paths.journal) from None
        changed = sum(1 for line in lines if line.changed)
        expiring = sum(1 for line in lines if line.expiring_soon)
        return ctx.finish(
            counts,
            results=str(out),
            extra={"changed": changed, "expiring": expiring},
        )
