"""Where the stages are wired for ``run`` and ``validate``: load → validate → journal →
engine (create, then update) → reconcile.

:func:`validate_file` and :func:`run_file` return the exit code the contract gives. Errors that
mean nothing was sent (:class:`~importer.errors.UsageError`) propagate before anything is
touched; once sending has begun, the results file and the journal are written whatever happens
(:class:`~importer.commands.context.Context`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from importer.api.engine import Runner
from importer.api.live import read_live
from importer.api.ops import CREATE, UPDATE, Held
from importer.api.ops.create import CODE_TAKEN
from importer.api.ops.write import GONE
from importer.api.pool import Work
from importer.api.wire import LiveCode
from importer.commands.context import Context, Paths, Target
from importer.config import Settings
from importer.errors import OutputError
from importer.journal import Entry, Journal, plan, read_entries
from importer.models import Outcome, Record, RowIssue, Status
from importer.outputs.results import build_lines, write_results
from importer.rules.checked import freeze_heap, load_checked
from importer.rules.codes import assign_codes

__all__ = ["Paths", "Target", "run_file", "validate_file"]  # Paths, Target: the CLI

log = logging.getLogger("importer")


def validate_file(
    paths: Paths,
    settings: Settings,
    *,
    today: date,
    stream: TextIO | None = None,
    quiet: bool = False,
    update: bool = False,
) -> int:
    """Load and validate only: the same results file, nothing sent. 0 if every row is valid.

    When the journal exists, also says what a run (with `update`: ``run --update``) would do:
    codes to create, to update and to leave alone, read from the journal without its lock.
    """
    ctx = Context("validate", settings, None, paths, stream=stream, quiet=quiet)
    checked = load_checked(paths.input, settings.input, today)
    ctx.check_outputs((paths.results, "results file"))
    lines = build_lines(checked.records, checked.issues, itertools.repeat(None))
    counts = write_results(paths.results, ctx.listing(lines))
    return ctx.finish(
        counts,
        results=str(paths.results),
        extra=would_do(paths.journal, checked.records, update),
    )


def would_do(journal_path: Path, records: Sequence[Record], update: bool) -> dict[str, int]:
    """How many codes a run would create, update and leave alone, by the journal (read-only)."""
    entries = read_entries(journal_path)
    create = change = same = 0
    for record in records:
        entry = entries.get(record.key)
        if entry is None or plan(record, entry).send:
            create += 1
        elif entry.status == Status.CREATED and entry.fingerprint != record.fingerprint and update:
            change += 1
        else:
            same += 1
    return {"would_create": create, "would_update": change, "would_leave": same}


def run_file(
    paths: Paths,
    settings: Settings,
    target: Target,
    *,
    today: date,
    stream: TextIO | None = None,
    quiet: bool = False,
    progress: bool = True,
    update: bool = False,
) -> int:
    """Import every valid row, resuming from the journal; with `update`, also ``PUT`` the rows
    edited since their code was created. Writes the results and the summary."""
    ctx = Context("run", settings, target, paths, stream=stream, quiet=quiet, progress=progress)
    checked = load_checked(paths.input, settings.input, today)
    ctx.check_outputs((paths.results, "results file"))
    with ctx.opened(paths.journal, str(paths.input)) as journal:
        freeze_heap()
        records = _with_codes(checked.records, journal, settings)
        issues = list(checked.issues)
        # Each record's entry, looked up once: a finished rerun of a million rows reuses them for
        # the results file instead of looking them all up again (half a second).
        known = _entries_of(records, journal)
        records, pasted = _adopt_generated(records, known, journal)
        if pasted:
            issues = sorted([*issues, *pasted], key=lambda issue: issue.row)
        known = _entries_of(records, journal)
        work = _work(records, known)
        changes = _changes(records, known) if update else []
        journal.note_plan(
            {
                "rows": checked.rows,
                "codes": len(records),
                "invalid": len(issues),
                "to_send": len(work),
                "fresh": sum(1 for entry in known if entry is None),
                "to_update": len(changes),
            }
        )
        log.info(
            "%d rows: %d valid codes, %d invalid rows, %d to send%s",
            checked.rows, len(records), len(issues), len(work),
            f", {len(changes)} to update" if update else "",
        )  # fmt: skip
        verdicts: dict[str, Outcome] = {}
        if work or changes:
            renewed = ctx.engine(
                lambda runner: _send(ctx, runner, journal, work, changes, verdicts)
            )
            records = [renewed.get(r.key, r) for r in records] if renewed else records
        known = _entries_of(records, journal)
        lines = build_lines(records, issues, known, verdicts)
        try:
            counts = write_results(paths.results, ctx.listing(lines))
        except OutputError as exc:
            raise ctx.output_failed(exc, paths.journal) from None
        done = sum(1 for o in verdicts.values() if o.status in (Status.CREATED, Status.UPDATED))
        duration = time.monotonic() - ctx.started
        return ctx.finish(
            counts,
            results=str(paths.results),
            journal=str(paths.journal),
            rate=done / duration if duration else 0.0,
        )


async def _send(
    ctx: Context,
    runner: Runner,
    journal: Journal,
    work: Sequence[Work[Record]],
    changes: Sequence[Held],
    verdicts: dict[str, Outcome],
) -> dict[str, Record]:
    """Create what *work* holds, give clashing generated codes new ones and send those, then
    apply *changes*; returns the records whose generated code was renewed, by key."""

    def note(item: Work[Any], outcome: Outcome) -> None:
        verdicts[item.record.key] = outcome

    await ctx.rows(runner, CREATE, "create", work, journal.mark_sending, note)
    renewed: dict[str, Record] = {}
    clashing: set[str] = set()  # codes someone else holds: never generated again
    for _ in range(MAX_RENEWALS):
        clashed = [
            w.record
            for w in work
            if w.record.generated and verdicts.get(w.record.key, NO_VERDICT).issue == CODE_TAKEN
        ]
        if not clashed or runner.stopping.is_set():
            break
        clashing.update(r.code.upper() for r in clashed)
        fresh = _renew_codes(clashed, journal, ctx.settings, clashing)
        renewed.update((r.key, r) for r in fresh)
        work = [Work(r, r) for r in fresh]
        verdicts.update((r.key, NO_VERDICT) for r in fresh)
        log.info("%d generated code(s) were taken by someone else: sending new ones", len(fresh))
        await ctx.rows(runner, CREATE, "create", work, journal.mark_sending, note)
    if changes and not runner.stopping.is_set():
        await update_codes(ctx, runner, journal, changes, verdicts)
    return renewed


#: Rounds of new codes for generated codes someone else already holds (with a dozen random
#: characters a clash is already rare; a second one in a row, rarer still).
MAX_RENEWALS = 5
NO_VERDICT = Outcome(Status.PENDING)


async def update_codes(
    ctx: Context,
    runner: Runner,
    journal: Journal,
    changes: Sequence[Held],
    verdicts: dict[str, Outcome],
) -> None:
    """``PUT`` each edited code, after reading what Zype holds: a redeemed code is kept as it
    is, a code Zype no longer holds is reported missing, a code that already holds the new
    values (a PUT that landed before a crash) is recorded without a request."""
    held = {c.api_id: c for c in journal.created() if c.status == Status.CREATED}
    live = await read_live(runner, [held[c.api_id] for c in changes if c.api_id in held])
    to_put: list[Work[Held]] = []
    for change in changes:
        key = change.record.key
        found = live.get(change.api_id)
        verdict = decide_update(change, found)
        if verdict is None:
            to_put.append(Work(change, change.record))
        elif verdict.status == Status.UPDATED:
            journal.record(change.record, verdict, "update")
            verdicts[key] = verdict
        else:
            verdicts[key] = verdict

    def note(item: Work[Any], outcome: Outcome) -> None:
        verdicts[item.record.key] = outcome

    await ctx.rows(runner, UPDATE, "update", to_put, None, note)


def decide_update(change: Held, live: LiveCode | None) -> Outcome | None:
    """What to do with an edited code, given what Zype holds: None means send the PUT."""
    if live is None:
        return Outcome(Status.MISSING, api_id=change.api_id, error=GONE)
    if live.redeemed:
        return Outcome(
            Status.KEPT,
            api_id=change.api_id,
            error=(
                f"redeemed {live.redeemed_at or ''}".rstrip()
                + ": a customer holds it, so the sheet's new values were not applied"
            ),
        )
    if live.holds(change.record):
        return Outcome(
            Status.UPDATED,
            api_id=change.api_id,
            fingerprint=live.fingerprint,
            content_title=live.content_title,
        )
    return None


def _changes(records: Sequence[Record], known: Sequence[Entry | None]) -> list[Held]:
    """Created codes whose row now holds another date or entitlement: what ``--update`` PUTs."""
    return [
        Held(record, entry.api_id)
        for record, entry in zip(records, known, strict=True)
        if entry is not None
        and entry.status == Status.CREATED
        and entry.fingerprint != record.fingerprint
        and entry.api_id
    ]


def _adopt_generated(
    records: list[Record], known: Sequence[Entry | None], journal: Journal
) -> tuple[list[Record], list[RowIssue]]:
    """Rows whose code the journal generated for another row (pasted back from the results)
    take that row's entry. While the generated row is still in the sheet, the pasted row is a
    duplicate of it instead (it would otherwise share its code and id)."""
    new = [r for r, e in zip(records, known, strict=True) if e is None and not r.generated]
    if not new:  # most reruns: no need to read the generated codes at all
        return records, []
    keys = {r.key: r for r in records}
    by_code = journal.generated_by_code()
    duplicates: list[RowIssue] = []
    kept_new: list[Record] = []
    for record in new:
        source = by_code.get(record.code.upper())
        if source is not None and source in keys:
            original = keys[source]
            duplicates.append(
                RowIssue(
                    record.row,
                    "duplicate-code",
                    "code",
                    f"duplicate of row {original.row} (the code generated for that row)",
                    record.code,
                )
            )
        else:
            kept_new.append(record)
    adopted = journal.adopt_generated(kept_new, by_code) if kept_new else []
    if adopted:
        log.info("%d code(s) in the sheet were generated by an earlier run: kept", len(adopted))
    if duplicates:
        pasted = {issue.row for issue in duplicates}
        records = [r for r in records if r.generated or r.row not in pasted]
    return records, duplicates


def _entries_of(records: Sequence[Record], journal: Journal) -> list[Entry | None]:
    """Each record's journal entry, in the records' order (``None``: never written)."""
    return list(map(journal.entries.get, [r.key for r in records]))


def _work(records: list[Record], known: Sequence[Entry | None]) -> list[Work[Record]]:
    """What this run sends: rows a crash left unsettled first, so they are looked up before
    anything new goes out; then the rest in input order. `known`: each record's entry."""
    unsure: list[Work[Record]] = []
    fresh: list[Work[Record]] = []
    created = Status.CREATED
    for record, found in zip(records, known, strict=True):
        if found is not None and found.status == created:
            continue  # what plan() decides for it, without the call: most rows of a rerun
        decision = plan(record, found)
        if decision.send:
            (unsure if decision.unsure else fresh).append(Work(record, record, decision.unsure))
    return unsure + fresh


def _with_codes(records: list[Record], journal: Journal, settings: Settings) -> list[Record]:
    """Give generated rows their code: the journal's if it has one, else a new one, stored."""
    blank = [r.key for r in records if r.generated and not r.code]
    if not blank:
        return records
    known = journal.generated_codes()
    taken: set[str] = set()
    if not known.keys() >= set(blank):
        # A new code must differ from every code of the sheet and of the journal.
        taken = {r.code.upper() for r in records if r.code}
        taken |= journal.known_codes()
    records, new = assign_codes(records, known, settings.codes, taken)
    if new:
        journal.store_generated([r for r in records if r.key in new])
    return records


def _renew_codes(
    clashed: list[Record], journal: Journal, settings: Settings, avoid: set[str]
) -> list[Record]:
    """New codes for generated records whose code another owner holds, stored before sent."""
    blank = [dataclasses.replace(r, code="") for r in clashed]
    taken = journal.known_codes() | avoid
    renewed, _ = assign_codes(blank, {}, settings.codes, taken)
    journal.store_generated(renewed)
    return renewed
