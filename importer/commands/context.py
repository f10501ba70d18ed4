"""The run context every command that talks to the API opens, the same for all of them.

It holds the journal (lock, binding to one API, the run's start and end), the signals, the
sandbox, the HTTP session and the request engine, the progress display, the typed
:class:`Summary`, and :func:`exit_code`, the one place a command's outcome becomes its exit
code. A command (:mod:`~importer.commands.run`, :mod:`~importer.commands.undo`,
:mod:`~importer.commands.audit`) says only what to read and which operation to perform on
which rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

from importer.api.engine import Operation, Runner, Tally
from importer.api.http import HttpSender, open_session
from importer.api.limiter import PacedLimiter
from importer.api.ops import PROBE
from importer.api.pacing import AutoLimiter, AutoPace
from importer.api.pool import Work, run_pool
from importer.api.remembered import RememberedPaces
from importer.config import Settings, is_loopback
from importer.errors import ApiUnavailableError, Interrupted, OutputError, StopRun, UsageError
from importer.journal import Journal, open_journal
from importer.models import Outcome, Record, Status
from importer.outputs.files import check_writable
from importer.outputs.notify import notify_run
from importer.outputs.progress import Progress
from importer.outputs.results import Cells
from importer.outputs.summary import NOT_DONE, Summary, exit_code, write_summary
from importer.sandbox.faults import Faults

log = logging.getLogger("importer")

ItemT = TypeVar("ItemT")
T = TypeVar("T")

#: Whether this process has marked a request in a journal: an interrupt after it is not "nothing
#: was sent" (read by the CLI's last-resort handler).
ACTIVITY = {"marked": False}


@dataclass(frozen=True)
class Paths:
    """Where a command reads and writes."""

    input: Path
    results: Path
    journal: Path
    summary: Path | None = None
    #: The report page (``--html``), if asked for.
    html: Path | None = None

    @classmethod
    def for_input(
        cls,
        input_path: str | Path,
        results: str | Path | None = None,
        journal: str | Path | None = None,
        summary: str | Path | None = None,
        html: str | Path | None = None,
    ) -> Paths:
        """Defaults: ``<input>.results.csv`` beside the input, the journal beside the results."""
        source = Path(input_path)
        results_path = Path(results) if results else source.with_name(f"{source.stem}.results.csv")
        journal_path = Path(journal) if journal else results_path.with_suffix(".journal")
        return cls(
            source,
            results_path,
            journal_path,
            Path(summary) if summary else None,
            Path(html) if html else None,
        )


@dataclass(frozen=True)
class Target:
    """The API a command talks to; ``sandbox`` set means an in-process sandbox is started.

    The key is left out of ``repr``, so no log or traceback line that shows a Target shows it.
    """

    url: str
    api_key: str = field(repr=False)
    sandbox: Faults | None = None

    @property
    def label(self) -> str:
        """What the journal is bound to."""
        return "sandbox" if self.sandbox is not None else self.url.rstrip("/")

    @classmethod
    def in_process_sandbox(cls, faults: Faults) -> Target:
        """A sandbox on a free loopback port, with a throwaway key."""
        return cls(url="", api_key=f"sandbox-{secrets.token_hex(8)}", sandbox=faults)

    def check(self) -> None:
        """Refuse to send the key in clear text: plain ``http://`` only to a loopback host."""
        if self.sandbox is not None:
            return
        parts = urlsplit(self.url)
        if parts.scheme.lower() == "http" and not is_loopback(parts.hostname or ""):
            raise UsageError(
                f"api.url {self.url} is plain http:// to a host that is not this machine: the"
                " API key would cross the network in clear text; use https://"
            )


class Context:
    """One command's run: journal, engine, progress and summary. See the module docstring."""

    def __init__(
        self,
        command: str,
        settings: Settings,
        target: Target | None,
        paths: Paths,
        *,
        stream: TextIO | None = None,
        quiet: bool = False,
        progress: bool = True,
    ) -> None:
        self.command = command
        self.settings = settings
        self.target = target
        self.paths = paths
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.show_progress = progress and not quiet
        self.started = time.monotonic()
        self.summary = Summary(command, input=str(paths.input))
        self.started_at = time.strftime("%Y-%m-%d %H:%M:%S")
        #: The result lines the report page lists, collected while the results are written.
        self.listed: list[Cells] = []
        self.tally = Tally()
        #: ``--rate auto``'s limiter, once the API is opened.
        self.auto: AutoLimiter | None = None
        self.stopped: StopRun | None = None
        self.journal: Journal | None = None

    # -- the outputs ---------------------------------------------------------------------------
    def check_outputs(self, *files: tuple[Path | None, str]) -> None:
        """Every file this command will write can be written: found out before anything is
        sent. The summary and the report page always; *files* besides (the results file...)."""
        wanted = (*files, (self.paths.summary, "summary"), (self.paths.html, "report page"))
        for path, what in wanted:
            if path is not None:
                check_writable(path, what)

    def listing(self, lines: Iterable[Cells]) -> Iterable[Cells]:
        """*lines* on their way to a file, keeping those the report page lists (if asked for)."""
        if self.paths.html is None:
            return lines
        from importer.outputs.report import collect_listed

        return collect_listed(lines, self.listed)

    # -- the journal ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def opened(self, path: Path, source: str) -> Iterator[Journal]:
        """The journal, locked, checked against the target and with this run started; on
        leaving, the run's end is recorded (``finished``, ``stopped`` or ``crashed``) and the
        lock released.

        An error while closing never hides the error that ended the block.
        """
        journal = open_journal(path, synchronous=self.settings.journal.synchronous)
        self.journal = journal
        outcome = "crashed"
        completed = False
        try:
            if self.target is not None:
                journal.check_target(self.target.label)
            journal.start_run(self.command, source)
            yield journal
            outcome = "stopped" if self.stopped else "finished"
            completed = True
        except (StopRun, KeyboardInterrupt) as exc:
            outcome = "stopped"
            if isinstance(exc, StopRun):
                self.stopped = self.stopped or exc
            raise
        finally:
            closing = _record_end(journal, outcome, self.summary)
            # Raised only when nothing else is: an error closing never hides the first one.
            if closing is not None and completed:
                raise closing

    # -- the engine ------------------------------------------------------------------------------
    def engine(self, body: Callable[[Runner], Awaitable[T]]) -> T | None:
        """Run *body* with a ready :class:`Runner` in a fresh event loop; None if it stopped.

        Opens the sandbox (if any) and the session, proves with one probe that api.url is the
        API (and only then ties the journal to it), and turns SIGINT/SIGTERM into a stop: waits
        end at once, requests in flight get ``send.drain_timeout`` seconds, and the stop is
        recorded in :attr:`stopped` (exit 3) rather than raised, so the caller still writes its
        files.
        """
        try:
            return asyncio.run(self._engine(body))
        except StopRun as exc:
            url = self.target.url if self.target is not None else ""
            if isinstance(exc, ApiUnavailableError) and url and url not in str(exc):
                exc = ApiUnavailableError(f"{exc} (api.url: {url})")
            self.stopped = exc
            log.error("stopped: %s", exc)
            return None

    async def _engine(self, body: Callable[[Runner], Awaitable[T]]) -> T:
        assert self.target is not None
        stopping = asyncio.Event()
        signals: list[int] = []
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if not signals:
                log.warning(
                    "%s: finishing requests in flight, then stopping", signal.strsignal(signum)
                )
            signals.append(signum)
            stopping.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            async with self._runner(self.target, stopping) as (runner, url):
                await runner.perform(PROBE, url)
                self.tally.probes += 1
                if self.journal is not None:
                    self.journal.bind_target(self.target.label)
                result = await body(runner)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        if signals:
            raise Interrupted(f"interrupted by {signal.strsignal(signals[0])}")
        return result

    @contextlib.asynccontextmanager
    async def _runner(
        self, target: Target, stopping: asyncio.Event
    ) -> AsyncIterator[tuple[Runner, str]]:
        async with contextlib.AsyncExitStack() as stack:
            api = self.settings.api
            if target.sandbox is not None:
                from importer.sandbox import running_sandbox  # aiohttp.web: only loaded here

                sandbox = await stack.enter_async_context(
                    running_sandbox(target.api_key, target.sandbox)
                )
                api = dataclasses.replace(api, url=sandbox.url)
            session = await stack.enter_async_context(open_session(api, self.settings.send.workers))
            send = self.settings.send
            limiter: PacedLimiter | AutoLimiter
            if send.auto:
                remembered = RememberedPaces()
                policy = AutoPace(
                    remembered=remembered.recall(api.url),
                    max_rate=send.max_rate,
                    max_in_flight=send.max_concurrency,
                )
                limiter = self.auto = AutoLimiter(policy, PacedLimiter(policy.pace))
                stack.callback(self._remember, remembered, api.url)
            else:
                limiter = PacedLimiter(send.rate)
            runner = Runner(
                HttpSender(session, api, target.api_key),
                limiter,
                send,
                stopping=stopping,
                tally=self.tally,
            )
            yield runner, api.url

    def _remember(self, remembered: RememberedPaces, url: str) -> None:
        """Keep the pace ``--rate auto`` found for the next run against *url*."""
        assert self.auto is not None
        found = self.auto.found()
        if found is not None:
            remembered.remember(url, found)

    async def rows(
        self,
        runner: Runner,
        op: Operation[ItemT, Outcome],
        operation: str,
        work: Sequence[Work[ItemT]],
        mark: Callable[[Sequence[Record]], None] | None,
        on_outcome: Callable[[Work[ItemT], Outcome], None] | None = None,
    ) -> None:
        """Perform *op* on every item of *work* with the worker pool, `concurrency` at a time.

        `mark` commits a batch's mark (``sending``, ``deleting``) before any of it goes out;
        every outcome is recorded in the journal as *operation*'s, counted on the progress
        display, logged when it is a failure, and passed to `on_outcome`.
        """
        if not work:
            return
        journal = self.journal
        assert journal is not None
        settings = self.settings
        bar = Progress(
            len(work),
            stream=self.stream,
            interval=settings.output.log_interval,
            enabled=self.show_progress,
            pace=None if self.auto is None else (lambda: self.auto.pace if self.auto else 0.0),
        )
        detailed = log.isEnabledFor(logging.DEBUG)

        def before_batch(batch: Sequence[Work[ItemT]]) -> None:
            if mark is not None:
                mark([w.record for w in batch])
                ACTIVITY["marked"] = True

        def recorded(item: Work[ItemT], outcome: Outcome) -> None:
            journal.record(item.record, outcome, operation)
            bar.advance(outcome.status.value)
            record = item.record
            if outcome.status in (Status.REJECTED, Status.FAILED, Status.MISSING):
                http = f" (HTTP {outcome.http_status})" if outcome.http_status else ""
                log.warning(
                    "row %d, code %s: %s %s%s: %s",
                    record.row, record.code, operation, outcome.status.value, http, outcome.error,
                )  # fmt: skip
            elif detailed:
                log.debug(
                    "row %d, code %s: %s %s %s", record.row, record.code, operation,
                    outcome.status.value, outcome.api_id,
                )  # fmt: skip
            if on_outcome is not None:
                on_outcome(item, outcome)

        async def idle() -> None:
            journal.flush_if_due(settings.journal.flush_interval, settings.journal.batch_size)
            bar.refresh()

        async def perform(item: Work[ItemT]) -> Outcome:
            return await runner.perform(op, item.item, unsure=item.unsure)

        try:
            with bar.redirect_logging():
                await run_pool(
                    work,
                    perform,
                    runner.stopping,
                    concurrency=settings.send.workers,
                    batch_size=settings.journal.batch_size,
                    before_batch=before_batch,
                    on_outcome=recorded,
                    drain_timeout=settings.send.drain_timeout,
                    idle=idle,
                )
        finally:
            bar.close()
            journal.flush()

    # -- the end -------------------------------------------------------------------------------
    def finish(self, counts: Mapping[str, int], **fields: Any) -> int:
        """Fill in the summary, print it, write ``--summary`` and the report page, send the
        notification; return the exit code.

        The notification goes last, after every file is written, and never changes the exit
        code: a webhook that is down costs one warning line.
        """
        summary = self.summary
        summary.counts = Counter(counts)
        summary.duration = time.monotonic() - self.started
        summary.take(self.tally)
        if self.auto is not None:
            summary.pace = round(self.auto.pace, 1)
            summary.in_flight = self.auto.in_flight
        for name, value in fields.items():
            setattr(summary, name, value)
        if self.stopped is not None:
            summary.stopped = str(self.stopped)
        data = summary.as_dict()
        if self.paths.summary is not None:
            write_summary(self.paths.summary, data)
        if self.paths.html is not None:
            from importer.outputs.report import RunReport, write_html

            report = RunReport(
                self.command, str(self.paths.input), self.started_at, data, self.listed,
                summary.timeline,
            )  # fmt: skip
            write_html(self.paths.html, report)
        if not self.quiet:
            print(summary.lines(), file=self.stream)
        # Figures beside the counts that also decide it (audit: codes changed in Zype's admin).
        flags = {k: v for k, v in summary.extra.items() if k in NOT_DONE[self.command]}
        code = exit_code(self.command, {**counts, **flags}, self.stopped)
        secrets = [self.target.api_key] if self.target is not None else []
        notify_run(data, code, self.settings.notify, secrets=secrets)
        return code

    def output_failed(self, exc: OutputError, journal_path: Path) -> OutputError:
        """An output file that could not be written at the end: every outcome is in the journal.

        The exit code stays the run's own when requests were sent (never "nothing was sent").
        """
        error = OutputError(
            f"{exc}; every outcome is in the journal {journal_path}:"
            " the same command writes it again, sending nothing twice"
        )
        if ACTIVITY["marked"] or self.tally.requests:
            error.exit_code = 3
        return error


def _record_end(journal: Journal, outcome: str, summary: Summary) -> BaseException | None:
    """Record the run's end and close the journal; return (not raise) what failed."""
    failed: BaseException | None = None
    try:
        journal.finish_run(outcome, summary.as_dict())
    except Exception as exc:  # a full disk: the close below must still release the lock
        failed = exc
    try:
        journal.close()
    except Exception as exc:
        failed = failed or exc
    if failed is not None:
        log.error("%s", failed)
    return failed
