"""``zype-import undo``: delete the codes this sheet's journal created, never a redeemed one.

It reads what Zype holds first (list calls, :mod:`importer.api.live`), then sorts every created code
with :func:`decide_undo`: a redeemed code is kept (a customer holds it), a code Zype no longer
holds is recorded as gone without a request, the rest are deleted with the engine's ``DELETE``
operation, each batch marked ``deleting`` in the journal before it goes out. Without ``--yes``
it stops after the reading and prints what it would do.

Exactly once: a DELETE is idempotent, a 404 in the API's format to a retried DELETE means it is
gone, and after a crash the rows left ``deleting`` are read again and deleted if still there.
A second ``undo --yes`` finds no created code but the kept ones, and sends no DELETE.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any, TextIO

from importer.api.engine import Runner
from importer.api.live import read_live
from importer.api.ops import DELETE, Held
from importer.api.pool import Work
from importer.api.wire import LiveCode
from importer.commands.context import Context, Paths, Target
from importer.config import Settings
from importer.errors import OutputError
from importer.journal import Created, Entry, Journal
from importer.models import Outcome, Record, RowIssue, Status
from importer.outputs.results import Cells, issue_line, write_results
from importer.rules.checked import load_checked

log = logging.getLogger("importer")


def decide_undo(code: Created, live: LiveCode | None) -> Outcome | None:
    """What undo does with a created code, given what Zype holds: None means DELETE it."""
    if live is None:
        return Outcome(Status.DELETED, api_id=code.api_id, error="already gone from Zype")
    if live.redeemed:
        when = f" {live.redeemed_at}" if live.redeemed_at else ""
        return Outcome(
            Status.KEPT,
            api_id=code.api_id,
            error=f"redeemed{when}: a customer holds it, so it was not deleted",
        )
    return None


def undo_file(
    paths: Paths,
    settings: Settings,
    target: Target,
    *,
    today: date,
    yes: bool,
    stream: TextIO | None = None,
    quiet: bool = False,
    progress: bool = True,
) -> int:
    """Delete (with `yes`) or preview the deletion of every code the journal created."""
    ctx = Context("undo", settings, target, paths, stream=stream, quiet=quiet, progress=progress)
    checked = load_checked(paths.input, settings.input, today)
    ctx.check_outputs((paths.results if yes else None, "results file"))
    with ctx.opened(paths.journal, str(paths.input)) as journal:
        held = journal.created()
        verdicts: dict[str, Outcome] = {}
        if held:
            ctx.engine(lambda runner: _undo(ctx, runner, journal, held, verdicts, yes))
        if not yes:
            return _preview(ctx, held, verdicts)
        lines = undo_lines(checked.records, checked.issues, journal.entries, held, verdicts)
        try:
            counts = write_results(paths.results, ctx.listing(lines))
        except OutputError as exc:
            raise ctx.output_failed(exc, paths.journal) from None
        return ctx.finish(
            counts,
            results=str(paths.results),
            journal=str(paths.journal),
        )


async def _undo(
    ctx: Context,
    runner: Runner,
    journal: Journal,
    held: Sequence[Created],
    verdicts: dict[str, Outcome],
    yes: bool,
) -> None:
    live = await read_live(runner, held, ctx.settings.send.concurrency)
    work: list[Work[Held]] = []
    gone: list[tuple[Record, Outcome]] = []
    for code in held:
        verdict = decide_undo(code, live.get(code.api_id))
        if verdict is None:
            work.append(
                Work(Held(code.record, code.api_id), code.record, code.status == Status.DELETING)
            )
        elif verdict.status == Status.DELETED:
            gone.append((code.record, verdict))
        else:
            verdicts[code.record.key] = verdict
            if yes and code.status == Status.DELETING:
                journal.record(code.record, verdict, "delete")  # back to created: it stays
    if not yes:
        verdicts.update((w.record.key, Outcome(Status.PENDING, api_id=w.item.api_id)) for w in work)
        verdicts.update((record.key, outcome) for record, outcome in gone)
        return
    if gone:
        # Nothing to send: recorded as deleted through the same marks a DELETE takes.
        journal.mark_deleting([record for record, _ in gone])
        for record, outcome in gone:
            journal.record(record, outcome, "delete")
            verdicts[record.key] = outcome
        journal.flush()

    def note(item: Work[Any], outcome: Outcome) -> None:
        verdicts[item.record.key] = outcome

    await ctx.rows(runner, DELETE, "delete", work, journal.mark_deleting, note)


def _preview(ctx: Context, held: Sequence[Created], verdicts: Mapping[str, Outcome]) -> int:
    """Print what ``undo --yes`` would do; nothing was written to the API."""
    counts: Counter[str] = Counter()
    kept: list[int] = []
    for code in held:
        verdict = verdicts.get(code.record.key)
        if verdict is None:
            continue  # the reading stopped before it
        if verdict.status == Status.PENDING:
            counts["would delete"] += 1
        elif verdict.status == Status.KEPT:
            counts["would keep (redeemed)"] += 1
            kept.append(code.record.row)
        else:
            counts["already gone"] += 1
    if not ctx.quiet:
        rows = ", ".join(map(str, kept[:20])) + (" ..." if len(kept) > 20 else "")
        print(
            f"undo would delete {counts['would delete']} code(s) and keep"
            f" {counts['would keep (redeemed)']} redeemed one(s)"
            + (f" (rows {rows})" if kept else "")
            + (
                f"; {counts['already gone']} are already gone from Zype"
                if counts["already gone"]
                else ""
            )
            + ". Nothing was deleted: add --yes to delete.",
            file=ctx.stream,
        )
    return ctx.finish(counts, extra={"preview": True})


def undo_lines(
    records: Sequence[Record],
    issues: Sequence[RowIssue],
    entries: Mapping[str, Entry],
    held: Sequence[Created],
    verdicts: Mapping[str, Outcome],
) -> Iterator[Cells]:
    """Every row's line after an undo, in row order; codes no longer in the sheet included."""
    lines: list[Cells] = [issue_line(issue) for issue in issues]
    seen = set()
    for record in records:
        seen.add(record.key)
        lines.append(_line(record, entries.get(record.key), verdicts.get(record.key)))
    for code in held:
        if code.record.key not in seen:
            lines.append(
                _line(code.record, entries.get(code.record.key), verdicts.get(code.record.key))
            )
    lines.sort(key=lambda cells: cells[0])
    return iter(lines)


def _line(record: Record, entry: Entry | None, verdict: Outcome | None) -> Cells:
    api_id = entry.api_id if entry is not None else ""
    if entry is not None and entry.status == Status.DELETED:
        status, error = Status.DELETED, entry.error
    elif verdict is not None:
        status = Status.PENDING if verdict.status == Status.SENDING else verdict.status
        error = verdict.error
    elif entry is not None and entry.status in (Status.CREATED, Status.DELETING):
        status, error = Status.PENDING, "not deleted yet: run undo --yes again"
    else:
        status = Status.NOT_CREATED
        error = "" if entry is None else f"{entry.status}: {entry.error}".rstrip(": ")
    attempts = verdict.attempts if verdict is not None else 0
    http = verdict.http_status if verdict is not None else None
    return (
        record.row, status, record.code, api_id, error, "", record.kind, record.entitlement_id,
        record.expiration_date, entry.nice_code if entry is not None else "", attempts, http,
    )  # fmt: skip
