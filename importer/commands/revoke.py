"""``zype-import revoke``: delete a list of codes made anywhere (leaked ones), never a redeemed one.

The list is any sheet the loader reads with a code column (:func:`importer.rules.checked.
load_codes`); a malformed code or a repeat is refused, never sent. Every other listed code is
looked up by its code string (the engine's ``FIND_CODE`` read: one ``GET /redemption_codes/
{code}`` each, since a list of leaked codes shares no entitlement or creation window that a
list call could sweep), then sorted by :func:`decide_revoke`: a redeemed code is kept, a code
Zype does not hold is ``not found``, the rest are deleted by id with the engine's ``DELETE``.
Without ``--yes`` it stops after the reading and prints the plan.

Exactly once: the revoke journal (its own file, ``<input>.revoke.journal``) stores each code's
looked-up id with its ``deleting`` mark, one commit per batch before any of it goes out, and
``deleted`` after. After a crash, even ``kill -9``, a code the journal says ``deleting`` that
Zype no longer holds (or holds under another id) was deleted by this tool: it is ``revoked``,
never ``not found``. A code the journal says ``deleted`` is not read or sent again, so a second
``revoke --yes`` of the same list sends no DELETE.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TextIO

from importer.api.engine import Runner
from importer.api.ops import DELETE, FIND_CODE, Held
from importer.api.pool import Work
from importer.api.wire import LiveCode
from importer.commands.context import Context, Paths, Target
from importer.config import Settings
from importer.errors import OutputError, UsageError
from importer.journal import Entry, Journal, run_commands
from importer.models import Outcome, Record, RowIssue, Status
from importer.outputs.progress import Progress
from importer.outputs.results import Cells, write_table
from importer.rules.checked import load_codes

#: The results file's columns (``<input>.revoke.csv``).
COLUMNS = ("row", "code", "status", "id", "redeemed_at", "error", "issue")
#: Codes named per section of the plan printed without ``--yes``.
SHOWN = 50


class RevokeLine(NamedTuple):
    """One line of the revoke results, in :data:`COLUMNS` order."""

    row: int
    code: str
    status: str
    api_id: str = ""
    redeemed_at: str = ""
    error: str = ""
    issue: str = ""


def decide_revoke(entry: Entry | None, live: LiveCode | None) -> Outcome | None:
    """What revoke does with a listed code, given its journal entry and what Zype holds (read
    by its code): None means DELETE ``live.api_id``. Pure: table-tested."""
    status = entry.status if entry is not None else ""
    if status == Status.DELETED:
        return Outcome(Status.REVOKED, api_id=entry.api_id if entry else "")
    if (
        entry is not None
        and status == Status.DELETING
        and (live is None or live.api_id != entry.api_id)
    ):
        # Our DELETE went out before a crash and took effect (a code Zype holds under another
        # id was made again since, by someone else: it is not ours to delete).
        return Outcome(Status.REVOKED, api_id=entry.api_id)
    if live is None:
        return Outcome(Status.NOT_FOUND, error="Zype holds no such code")
    if live.redeemed:
        when = f" {live.redeemed_at}" if live.redeemed_at else ""
        return Outcome(
            Status.KEPT,
            api_id=live.api_id,
            error=f"redeemed{when}: a customer holds it, so it was not deleted",
        )
    return None


#: An outcome of this run, or a verdict, as the results show it.
_SHOWN = {
    Status.DELETED: Status.REVOKED,
    Status.REVOKED: Status.REVOKED,
    Status.KEPT: Status.KEPT,
    Status.NOT_FOUND: Status.NOT_FOUND,
    Status.REJECTED: Status.FAILED,  # the API refused the DELETE: the code is still there
    Status.FAILED: Status.FAILED,
}


def revoke_line(
    record: Record, entry: Entry | None, live: LiveCode | None, verdict: Outcome | None
) -> RevokeLine:
    """A listed code's line after this run (pure: table-tested)."""
    redeemed_at = live.redeemed_at if live is not None else ""
    if entry is not None and entry.status == Status.DELETED:
        return RevokeLine(record.row, record.code, Status.REVOKED.value, entry.api_id)
    api_id = (verdict.api_id if verdict is not None else "") or (
        entry.api_id if entry is not None else ""
    )
    if verdict is None:
        error = "not looked up yet: run revoke again"
        if entry is not None and entry.status == Status.DELETING:
            error = "a DELETE may have gone out: run revoke --yes again to settle it"
        return RevokeLine(record.row, record.code, Status.PENDING.value, api_id, error=error)
    status = _SHOWN.get(verdict.status, Status.PENDING)
    error = verdict.error
    if status is Status.PENDING and not error:
        error = "not deleted yet: run revoke --yes again"
    return RevokeLine(
        record.row,
        record.code,
        status.value,
        api_id,
        redeemed_at if status in (Status.KEPT,) else "",
        error,
    )


def revoke_lines(
    records: Sequence[Record],
    issues: Sequence[RowIssue],
    entries: Mapping[str, Entry],
    live: Mapping[str, LiveCode | None],
    verdicts: Mapping[str, Outcome],
) -> Iterator[RevokeLine]:
    """Every listed line's result, in the list's order: refused lines included."""
    lines = [
        RevokeLine(issue.row, issue.value, Status.INVALID.value, error=issue.message,
                   issue=issue.code)
        for issue in issues
    ]  # fmt: skip
    lines += [
        revoke_line(r, entries.get(r.key), live.get(r.key), verdicts.get(r.key)) for r in records
    ]
    lines.sort(key=lambda line: line.row)
    return iter(lines)


def report_cells(line: RevokeLine) -> Cells:
    """A revoke line in the results' column order, for the report page."""
    error = line.error
    return (line.row, line.status, line.code, line.api_id, error, line.issue, "", "", "", "", 0,
            None)  # fmt: skip


def revoke_file(
    paths: Paths,
    settings: Settings,
    target: Target,
    *,
    yes: bool,
    stream: TextIO | None = None,
    quiet: bool = False,
    progress: bool = True,
) -> int:
    """Revoke (with `yes`) or preview revoking every code the list names."""
    others = run_commands(paths.journal) - {"revoke"}
    if others:
        raise UsageError(
            f"{paths.journal} is the journal of another command ({', '.join(sorted(others))}):"
            " revoke keeps a journal of its own; name another --journal"
        )
    ctx = Context("revoke", settings, target, paths, stream=stream, quiet=quiet, progress=progress)
    checked = load_codes(paths.input, settings.input)
    ctx.check_outputs((paths.results if yes else None, "results file"))
    with ctx.opened(paths.journal, str(paths.input)) as journal:
        live: dict[str, LiveCode | None] = {}
        verdicts: dict[str, Outcome] = {}
        if checked.records:
            ctx.engine(
                lambda runner: _revoke(ctx, runner, journal, checked.records, live, verdicts, yes)
            )
        if not yes:
            return _preview(ctx, checked.records, checked.issues, live, verdicts)
        lines = list(revoke_lines(checked.records, checked.issues, journal.entries, live, verdicts))
        try:
            counts = write_table(paths.results, COLUMNS, lines)
            collections.deque(ctx.listing(map(report_cells, lines)), maxlen=0)  # for the page
        except OutputError as exc:
            raise ctx.output_failed(exc, paths.journal) from None
        return ctx.finish(counts, results=str(paths.results), journal=str(paths.journal))


async def _revoke(
    ctx: Context,
    runner: Runner,
    journal: Journal,
    records: Sequence[Record],
    live: dict[str, LiveCode | None],
    verdicts: dict[str, Outcome],
    yes: bool,
) -> None:
    entries = journal.entries
    # A code the journal says this tool deleted is neither read nor sent again.
    unread = [r for r in records if _state(entries.get(r.key)) != Status.DELETED]
    slots = asyncio.Semaphore(ctx.settings.send.concurrency)
    # One read per code, at the configured rate: a long list takes a while, so it shows.
    bar = Progress(
        len(unread),
        stream=ctx.stream,
        interval=ctx.settings.output.log_interval,
        enabled=ctx.show_progress,
    )

    async def look_up(record: Record) -> None:
        async with slots:
            found = await runner.perform(FIND_CODE, record.code)
        live[record.key] = found
        bar.advance("absent" if found is None else found.state)

    try:
        with bar.redirect_logging():
            await asyncio.gather(*(look_up(record) for record in unread))
    finally:
        bar.close()
    work: list[Work[Held]] = []
    ids: dict[str, str] = {}
    settled: list[tuple[Record, Outcome]] = []
    for record in records:
        entry = entries.get(record.key)
        found = live.get(record.key)
        verdict = decide_revoke(entry, found)
        if verdict is None:
            assert found is not None
            ids[record.key] = found.api_id
            unsure = _state(entry) == Status.DELETING
            work.append(Work(Held(record, found.api_id), record, unsure))
            if not yes:
                verdicts[record.key] = Outcome(Status.PENDING, api_id=found.api_id)
            continue
        verdicts[record.key] = verdict
        if _state(entry) == Status.DELETING and verdict.status in (Status.REVOKED, Status.KEPT):
            settled.append((record, verdict))
    if not yes:
        return
    for record, verdict in settled:
        # A crashed run's mark, settled by what Zype holds now: deleted, or kept after all.
        done = Status.DELETED if verdict.status == Status.REVOKED else Status.KEPT
        journal.record(record, Outcome(done, api_id=verdict.api_id), "revoke")
    journal.flush()

    def note(item: Work[Any], outcome: Outcome) -> None:
        verdicts[item.record.key] = outcome

    await ctx.rows(
        runner, DELETE, "revoke", work, lambda batch: journal.mark_revoking(batch, ids), note
    )


def _state(entry: Entry | None) -> str:
    return entry.status if entry is not None else ""


def _preview(
    ctx: Context,
    records: Sequence[Record],
    issues: Sequence[RowIssue],
    live: Mapping[str, LiveCode | None],
    verdicts: Mapping[str, Outcome],
) -> int:
    """Print what ``revoke --yes`` would do; nothing was written to the API."""
    sections: dict[str, list[str]] = {"revoke": [], "keep": [], "absent": [], "done": []}
    for record in records:
        verdict = verdicts.get(record.key)
        if verdict is None:
            continue  # the reading stopped before it
        where = f"{record.code} (row {record.row}"
        if verdict.status == Status.PENDING:
            sections["revoke"].append(where + ")")
        elif verdict.status == Status.KEPT:
            found = live.get(record.key)
            when = found.redeemed_at if found is not None and found.redeemed_at else "?"
            sections["keep"].append(f"{where}, redeemed {when})")
        elif verdict.status == Status.NOT_FOUND:
            sections["absent"].append(where + ")")
        else:
            sections["done"].append(where + ")")
    refused = [f"row {issue.row}: {issue.message}" for issue in issues]
    counts = {
        "would revoke": len(sections["revoke"]),
        "would keep (redeemed)": len(sections["keep"]),
        "not found": len(sections["absent"]),
        "already revoked": len(sections["done"]),
        "refused": len(refused),
    }
    if not ctx.quiet:
        out = [
            f"revoke would delete {counts['would revoke']} code(s), keep"
            f" {counts['would keep (redeemed)']} redeemed one(s); {counts['not found']} code(s)"
            f" Zype does not hold, {counts['refused']} line(s) refused"
            + (f", {counts['already revoked']} already revoked" if sections["done"] else "")
            + "."
        ]
        titles = (
            ("revoke", "would revoke"),
            ("keep", "kept: a customer redeemed it"),
            ("absent", "not found: Zype holds no such code"),
            ("done", "already revoked by an earlier run"),
        )
        for name, title in titles:
            out += _section(title, sections[name])
        out += _section("refused (never sent)", refused)
        out.append("Nothing was deleted: add --yes to revoke.")
        print("\n".join(out), file=ctx.stream)
    return ctx.finish(counts, extra={"preview": True})


def _section(title: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    more = f"  ... and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return [f"{title} ({len(items)}):", *(f"  {item}" for item in items[:SHOWN])] + (
        [more] if more else []
    )
