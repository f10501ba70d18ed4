"""The one place the stages are wired: load → validate → journal → submit → reconcile.

:func:`validate_file` and :func:`run_file` return the exit code the contract gives. Errors that
mean nothing was sent (:class:`~importer.errors.UsageError`) propagate before anything is
touched; once sending has begun, the results file and the journal are written whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import logging
import secrets
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from importer.codes import assign_codes
from importer.config import Settings
from importer.errors import Interrupted, OutputError, StopRun
from importer.faults import Faults
from importer.http import HttpSender, open_session
from importer.journal import Entry, Journal, open_journal, plan
from importer.limiter import PacedLimiter
from importer.load import load
from importer.models import Outcome, Record, Status
from importer.pool import Work, run_pool
from importer.progress import Progress
from importer.reconcile import (
    build_lines,
    check_writable,
    format_summary,
    summarize,
    write_results,
    write_summary,
)
from importer.submit import Submitter, Tally
from importer.validate import Checked, validate

log = logging.getLogger("importer")


@dataclass(frozen=True)
class Paths:
    """Where a run reads and writes."""

    input: Path
    results: Path
    journal: Path
    summary: Path | None = None

    @classmethod
    def for_input(
        cls,
        input_path: str | Path,
        results: str | Path | None = None,
        journal: str | Path | None = None,
        summary: str | Path | None = None,
    ) -> Paths:
        """Defaults: ``<input>.results.csv`` beside the input, the journal beside the results."""
        source = Path(input_path)
        results_path = Path(results) if results else source.with_name(f"{source.stem}.results.csv")
        journal_path = Path(journal) if journal else results_path.with_suffix(".journal")
        return cls(source, results_path, journal_path, Path(summary) if summary else None)


@dataclass(frozen=True)
class Target:
    """The API a run talks to; ``faults`` set means an in-process sandbox is started."""

    url: str
    api_key: str
    sandbox: Faults | None = None

    @property
    def label(self) -> str:
        """What the journal is bound to."""
        return "sandbox" if self.sandbox is not None else self.url.rstrip("/")

    @classmethod
    def in_process_sandbox(cls, faults: Faults) -> Target:
        """A sandbox on a free loopback port, with a throwaway key."""
        return cls(url="", api_key=f"sandbox-{secrets.token_hex(8)}", sandbox=faults)


def _load(paths: Paths, settings: Settings, today: date) -> Checked:
    sheet = load(paths.input, settings.input)
    for warning in sheet.warnings:
        log.warning("%s", warning)
    checked = validate(sheet, settings.input, today)
    _freeze_heap()
    return checked


def _freeze_heap() -> None:
    """Exempt everything loaded so far from the cyclic garbage collector.

    The records, the journal's entries and the libraries' own objects live for the whole run,
    yet collections of the older generations walk them again and again: a million records cost
    0.1-0.2 s a walk, and even with 3,000 rows, pandas and aiohttp make a 45 ms pause mid-run,
    during which granted requests pile up and then reach the API together, past the limiter's
    headroom (one 429 at 100/s was measured). Frozen, they are never walked; records and
    entries hold no cycles, so nothing collectable is kept.
    """
    gc.freeze()


def _check_outputs(paths: Paths) -> None:
    """The results and summary files can be written: found out before anything is sent."""
    check_writable(paths.results, "results file")
    if paths.summary is not None:
        check_writable(paths.summary, "summary")


def _finish(summary: dict[str, Any], paths: Paths, stream: TextIO, quiet: bool = False) -> None:
    if paths.summary is not None:
        write_summary(paths.summary, summary)
    if not quiet:
        print(format_summary(summary), file=stream)


def validate_file(
    paths: Paths,
    settings: Settings,
    *,
    today: date,
    stream: TextIO | None = None,
    quiet: bool = False,
) -> int:
    """Load and validate only: the same results file, nothing sent. 0 if every row is valid."""
    stream = sys.stderr if stream is None else stream
    started = time.monotonic()
    checked = _load(paths, settings, today)
    _check_outputs(paths)
    lines = build_lines(checked.records, checked.issues, itertools.repeat(None))
    counts = write_results(paths.results, lines)
    summary = summarize(
        counts,
        command="validate",
        results=str(paths.results),
        duration=round(time.monotonic() - started, 3),
    )
    _finish(summary, paths, stream, quiet)
    return 1 if checked.issues else 0


def run_file(
    paths: Paths,
    settings: Settings,
    target: Target,
    *,
    today: date,
    stream: TextIO | None = None,
    quiet: bool = False,
    progress: bool = True,
) -> int:
    """Import every valid row, resuming from the journal; write results and summary."""
    stream = sys.stderr if stream is None else stream
    started = time.monotonic()
    checked = _load(paths, settings, today)
    _check_outputs(paths)
    journal = open_journal(paths.journal, synchronous=settings.journal.synchronous)
    _freeze_heap()
    try:
        journal.bind_target(target.label)
        journal.start_run("run", str(paths.input))
        records = _with_codes(checked.records, journal, settings)
        # Each record's entry, looked up once: a finished rerun of a million rows reuses them for
        # the results file instead of looking them all up again (half a second).
        known = _entries_of(records, journal)
        if _adopt_generated(records, known, journal):
            known = _entries_of(records, journal)
        work = _work(records, known)
        journal.note_plan(len(records), len(work))
        log.info(
            "%d rows: %d valid codes, %d invalid rows, %d to send",
            checked.rows,
            len(records),
            len(checked.issues),
            len(work),
        )
        tally = Tally()
        bar = Progress(
            len(work),
            stream=stream,
            interval=settings.output.log_interval,
            enabled=progress and not quiet,
        )
        stopped: StopRun | None = None
        try:
            with bar.redirect_logging():
                asyncio.run(_send(work, journal, settings, target, tally, bar))
        except StopRun as exc:
            stopped = exc
        finally:
            bar.close()
            journal.flush()
            if work:  # what was sent has new entries
                known = _entries_of(records, journal)
            lines = build_lines(records, checked.issues, known)
            try:
                counts = write_results(paths.results, lines)
            except OutputError as exc:
                raise OutputError(
                    f"{exc}; every outcome is in the journal {paths.journal}:"
                    " the same command writes the results again, sending nothing twice"
                ) from None
            duration = time.monotonic() - started
            summary = summarize(
                counts,
                command="run",
                requests=tally.requests,
                retries=tally.retries,
                throttled=tally.throttled,
                lookups=tally.lookups,
                duration=round(duration, 3),
                rate=round(bar.counts[Status.CREATED] / duration, 2) if duration else 0.0,
                results=str(paths.results),
                journal=str(paths.journal),
                stopped=str(stopped) if stopped else None,
            )
            journal.finish_run("stopped" if stopped else "finished", summary)
            _finish(summary, paths, stream, quiet)
    finally:
        journal.close()
    if stopped is not None:
        log.error("stopped: %s", stopped)
        return stopped.exit_code
    if any(counts[s] for s in (Status.INVALID, Status.REJECTED, Status.FAILED)):
        return 1
    return 3 if counts[Status.PENDING] else 0


def _adopt_generated(
    records: Sequence[Record], known: Sequence[Entry | None], journal: Journal
) -> int:
    """Rows whose code the journal generated for another row (pasted back from the results)
    take that row's entry; returns how many did."""
    new = [r for r, e in zip(records, known, strict=True) if e is None and not r.generated]
    adopted = journal.adopt_generated(new) if new else 0
    if adopted:
        log.info("%d code(s) in the sheet were generated by an earlier run: kept", adopted)
    return adopted


def _entries_of(records: Sequence[Record], journal: Journal) -> list[Entry | None]:
    """Each record's journal entry, in the records' order (``None``: never written)."""
    return list(map(journal.entries.get, [r.key for r in records]))


def _work(records: list[Record], known: Sequence[Entry | None]) -> list[Work]:
    """What this run sends: rows a crash left unsettled first, so they are looked up before
    anything new goes out; then the rest in input order. `known`: each record's entry."""
    unsure: list[Work] = []
    fresh: list[Work] = []
    created = Status.CREATED
    for record, found in zip(records, known, strict=True):
        if found is not None and found.status == created:
            continue  # what plan() decides for it, without the call: most rows of a rerun
        decision = plan(record, found)
        if decision.send:
            (unsure if decision.unsure else fresh).append(Work(record, decision.unsure))
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


async def _send(
    work: Sequence[Work],
    journal: Journal,
    settings: Settings,
    target: Target,
    tally: Tally,
    bar: Progress,
) -> None:
    if not work:
        return
    stopping = asyncio.Event()
    signals: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if not signals:
            log.warning("%s: finishing requests in flight, then stopping", signal.strsignal(signum))
        signals.append(signum)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        async with contextlib.AsyncExitStack() as stack:
            api = settings.api
            if target.sandbox is not None:
                from importer.sandbox import running_sandbox  # aiohttp.web: only loaded here

                sandbox = await stack.enter_async_context(
                    running_sandbox(target.api_key, target.sandbox)
                )
                api = dataclasses.replace(api, url=sandbox.url)
            session = await stack.enter_async_context(open_session(api, settings.send.concurrency))
            submitter = Submitter(
                HttpSender(session, api, target.api_key),
                PacedLimiter(settings.send.rate),
                settings.send,
                stopping=stopping,
                tally=tally,
            )
            await run_pool(
                work,
                submitter,
                concurrency=settings.send.concurrency,
                batch_size=settings.journal.batch_size,
                before_batch=lambda batch: journal.mark_sending([w.record for w in batch]),
                on_outcome=_recorder(journal, bar),
                drain_timeout=settings.send.drain_timeout,
                idle=_idle(journal, settings, bar),
            )
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if signals:
        raise Interrupted(f"interrupted by {signal.strsignal(signals[0])}")


def _recorder(journal: Journal, bar: Progress) -> Callable[[Work, Outcome], None]:
    detailed = log.isEnabledFor(logging.DEBUG)

    def on_outcome(item: Work, outcome: Outcome) -> None:
        journal.record(item.record, outcome)
        bar.advance(outcome.status.value)
        record = item.record
        if outcome.status in (Status.REJECTED, Status.FAILED):
            http = f" (HTTP {outcome.http_status})" if outcome.http_status else ""
            log.warning(
                "row %d, code %s: %s%s: %s",
                record.row,
                record.code,
                outcome.status.value,
                http,
                outcome.error,
            )
        elif detailed:
            log.debug(
                "row %d, code %s: %s %s after %d attempt(s)",
                record.row,
                record.code,
                outcome.status.value,
                outcome.api_id,
                outcome.attempts,
            )

    return on_outcome


def _idle(journal: Journal, settings: Settings, bar: Progress) -> Callable[[], Any]:
    async def idle() -> None:
        journal.flush_if_due(settings.journal.flush_interval, settings.journal.batch_size)
        bar.refresh()

    return idle
