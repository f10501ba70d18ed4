"""The ``zype-import`` command line: run, validate, undo, audit, revoke, status, cards, sandbox.

Every error the user can cause ends as one line on stderr and the contract's exit code, never a
traceback. The API key comes only from the environment and is scrubbed from every log record.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from importer import __version__
from importer.commands.status import journal_status
from importer.config import NotifyConfig, Settings, load_settings
from importer.errors import ConfigError, ImporterError, UsageError, redact
from importer.outputs.notify import notify_run, webhook_url
from importer.sandbox.faults import Faults

if TYPE_CHECKING:
    from importer.commands.context import Paths

log = logging.getLogger("importer")

#: Every secret this process has read, so that even an unexpected traceback is scrubbed.
_SECRETS: list[str] = []
#: The notification settings, once read: a command that fails before its end still notifies.
_NOTIFY: list[NotifyConfig] = []

COMMANDS = {
    "run": "validate and create every valid row's code (--update: apply edits too)",
    "validate": "validate only; nothing is sent",
    "undo": "delete the codes this sheet's journal created, never a redeemed one",
    "audit": "what Zype holds now for every row; nothing is changed",
    "revoke": "delete a list of codes made anywhere (leaked ones), never a redeemed one",
    "status": "what the journal knows",
    "cards": "print-ready cards (PDF) or QR images (zip) of the created codes; sends nothing",
    "sandbox": "serve a local imitation of the API",
}
#: The commands that read a sheet and take the same options (:func:`_common`).
SHEET_COMMANDS = ("run", "validate", "undo", "audit", "revoke")
EXAMPLES = {
    "run": "example:\n  ZYPE_API_KEY=... zype-import run promo_codes.xlsx --rate 10\n"
    "  zype-import run samples/promo_codes.csv --sandbox\n"
    "  zype-import run promo_codes.xlsx --update   # also PUT dates/entitlements edited since",
    "validate": "example:\n  zype-import validate promo_codes.csv --results checked.csv",
    "undo": "example:\n  zype-import undo promo_codes.xlsx          # shows what it would do\n"
    "  zype-import undo promo_codes.xlsx --yes    # deletes",
    "audit": "example:\n  zype-import audit promo_codes.xlsx --expiring-within 30",
    "revoke": "example:\n  zype-import revoke leaked.csv          # shows what it would do\n"
    "  zype-import revoke leaked.csv --yes    # deletes every unredeemed listed code",
    "status": "example:\n  zype-import status --journal promo_codes.results.journal",
    "cards": "example:\n  zype-import cards promo_codes.xlsx   # writes promo_codes.cards.pdf\n"
    "  zype-import cards promo_codes.xlsx --output codes.zip   # one PNG per code",
    "sandbox": "example:\n  zype-import sandbox --port 8808 --faults latency=0.05,error_rate=0.1",
}


class RedactingFormatter(logging.Formatter):
    """Scrub the key from every formatted line, tracebacks included, whatever put it there.

    A formatter rather than a filter: tqdm's logging redirect copies a handler's formatter, not
    its filters, so only this survives while the progress bar shows.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def _setup_logging(verbosity: int, log_file: str | None, secrets: Sequence[str]) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{log_file}: cannot open log file ({exc.strerror})") from None
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = RedactingFormatter(secrets)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    # Their debug lines ("Using selector: EpollSelector") say nothing about the import.
    for library in ("aiohttp", "asyncio"):
        logging.getLogger(library).setLevel(logging.WARNING)


def parse_faults(spec: str | None) -> Faults:
    """``latency=0.05,rate_limit=100,error_rate=0.1`` into sandbox :class:`Faults`."""
    if not spec:
        return Faults()
    fields = {f for f in Faults.__dataclass_fields__}
    values: dict[str, float | int | None] = {}
    for part in spec.split(","):
        name, sep, raw = part.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise ConfigError(
                f"--faults: unknown fault '{part}' (known: {', '.join(sorted(fields))})"
            )
        try:
            values[name] = int(raw) if name == "seed" else float(raw)
        except ValueError:
            raise ConfigError(f"--faults: '{name}' must be a number, got {raw!r}") from None
    try:
        return Faults(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"--faults: {exc}") from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="the spreadsheet: .csv, .xlsx or .ods")
    parser.add_argument("--config", metavar="FILE", help="YAML settings (see config/default.yaml)")
    parser.add_argument(
        "--results", metavar="FILE", help="results CSV (default: INPUT.results.csv)"
    )
    parser.add_argument("--journal", metavar="FILE", help="journal (default: beside the results)")
    parser.add_argument("--summary", metavar="FILE", help="also write the summary as JSON")
    parser.add_argument("--html", metavar="FILE", help="also write a report page of the run")
    parser.add_argument("--api-url", metavar="URL", help="API base URL")
    parser.add_argument(
        "--rate",
        type=_rate,
        metavar="N|auto",
        help="requests per second, or auto: find the API's limit (default 10)",
    )
    parser.add_argument(
        "--max-rate", type=float, metavar="N", help="with --rate auto: never above N/s (100)"
    )
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="requests in flight (8; with auto: at most N)"
    )
    parser.add_argument(
        "--sheet", metavar="NAME", help="workbook sheet (default: the first with a header)"
    )
    parser.add_argument(
        "--sandbox", action="store_true", help="run against an in-process sandbox (no key needed)"
    )
    parser.add_argument(
        "--sandbox-faults", metavar="SPEC", help="faults for --sandbox, e.g. latency=0.05"
    )
    parser.add_argument("--log-file", metavar="FILE", help="also log to FILE")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    _verbosity(parser)


def _verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_const", const=1, dest="verbosity")
    group.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity")
    parser.set_defaults(verbosity=0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the test that every option is documented)."""
    parser = argparse.ArgumentParser(
        prog="zype-import",
        description="Create Zype redemption codes from a spreadsheet, safely and resumably.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = {
        name: sub.add_parser(
            name,
            help=summary,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for name, summary in COMMANDS.items()
    }
    for name in SHEET_COMMANDS:
        _common(commands[name])
    for name in ("run", "validate"):
        commands[name].add_argument(
            "--update",
            action="store_true",
            help="also PUT the date and entitlement of codes whose row was edited since created",
        )
    for name in ("undo", "revoke"):
        commands[name].add_argument(
            "--yes",
            action="store_true",
            help="really delete (without it, only show what it would do)",
        )
    audit = commands["audit"]
    audit.add_argument("--output", metavar="FILE", help="audit file (default: INPUT.audit.csv)")
    audit.add_argument(
        "--expiring-within",
        type=int,
        metavar="DAYS",
        help="mark unredeemed codes that expire within DAYS",
    )
    status = commands["status"]
    status.add_argument("input", nargs="?", help="the spreadsheet, to find its default journal")
    status.add_argument("--results", metavar="FILE", help="the results file the run wrote")
    status.add_argument("--journal", metavar="FILE", help="the journal to read")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    cards = commands["cards"]
    cards.add_argument("input", help="the spreadsheet that was run")
    cards.add_argument("--config", metavar="FILE", help="YAML settings (see config/default.yaml)")
    cards.add_argument("--results", metavar="FILE", help="the results file the run wrote")
    cards.add_argument("--journal", metavar="FILE", help="journal (default: beside the results)")
    cards.add_argument(
        "--sheet", metavar="NAME", help="workbook sheet (default: the first with a header)"
    )
    cards.add_argument(
        "--output", metavar="FILE", help="FILE.pdf or FILE.zip (default: INPUT.cards.pdf)"
    )
    cards.add_argument("--summary", metavar="FILE", help="also write the figures as JSON")
    cards.add_argument("--log-file", metavar="FILE", help="also log to FILE")
    cards.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    _verbosity(cards)
    sandbox = commands["sandbox"]
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8808)
    sandbox.add_argument("--faults", metavar="SPEC", help="e.g. latency=0.05,rate_limit=100")
    sandbox.add_argument(
        "--others", type=int, default=0, metavar="N", help="start with N other people's codes"
    )
    return parser


def _rate(text: str) -> float | str:
    """``--rate``: a number of requests per second, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or auto, got {text!r}") from None


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(
        args.config,
        **{
            "api.url": args.api_url,
            "send.rate": args.rate,
            "send.concurrency": args.concurrency,
            "send.max_rate": args.max_rate,
            "input.sheet": args.sheet,
        },
    )
    if settings.send.auto and args.concurrency is not None:
        # With auto the pace decides how many are in flight; the user's number caps it.
        send = dataclasses.replace(settings.send, max_concurrency=args.concurrency)
        settings = dataclasses.replace(settings, send=send)
    return settings


def _paths(args: argparse.Namespace, settings: Settings) -> Paths:
    """Where the command reads and writes. revoke's results and journal are its own
    (``<input>.revoke.csv`` and beside it), never the configured ones of the sheet's run."""
    from importer.commands.context import Paths

    if args.command == "revoke":
        source = Path(args.input)
        results = args.results or source.with_name(f"{source.stem}.revoke.csv")
        journal = args.journal
    else:
        results = args.results or settings.output.results
        journal = args.journal or settings.journal.path
    return Paths.for_input(
        args.input, results, journal, args.summary or settings.output.summary, args.html
    )


def _run(args: argparse.Namespace) -> int:
    """run, validate, undo, audit, revoke: the commands that read a sheet (and a journal)."""
    from importer.commands.run import Target, run_file, validate_file

    settings = _settings(args)
    _NOTIFY.append(settings.notify)
    key = os.environ.get(settings.api.key_env, "")
    webhook = webhook_url(settings.notify) or ""
    _SECRETS.extend((key, webhook))
    _setup_logging(args.verbosity, args.log_file, [key, webhook])
    if args.command == "audit" and args.expiring_within is not None and args.expiring_within < 0:
        raise UsageError("--expiring-within: DAYS must be 0 or more")
    paths = _paths(args, settings)
    quiet = args.verbosity < 0
    today = date.today()
    if args.command == "validate":
        return validate_file(paths, settings, today=today, quiet=quiet, update=args.update)
    if args.sandbox:
        target = Target.in_process_sandbox(parse_faults(args.sandbox_faults))
    else:
        if not key:
            raise UsageError(
                f"{settings.api.key_env} is not set: export your Zype admin API key, "
                "or try --sandbox"
            )
        target = Target(settings.api.url, key)
        target.check()
    progress = not args.no_progress
    if args.command == "undo":
        from importer.commands.undo import undo_file

        return undo_file(
            paths, settings, target, today=today, yes=args.yes, quiet=quiet, progress=progress
        )
    if args.command == "revoke":
        from importer.commands.revoke import revoke_file

        return revoke_file(paths, settings, target, yes=args.yes, quiet=quiet, progress=progress)
    if args.command == "audit":
        from importer.commands.audit import audit_file

        return audit_file(
            paths,
            settings,
            target,
            today=today,
            output=Path(args.output) if args.output else None,
            expiring_within=args.expiring_within,
            quiet=quiet,
            progress=progress,
        )
    return run_file(
        paths, settings, target, today=today, quiet=quiet, progress=progress, update=args.update
    )


def _cards(args: argparse.Namespace) -> int:
    """cards: reads the sheet and the journal only; no key is read, no request sent."""
    from importer.commands.cards import cards_file
    from importer.commands.run import Paths

    settings = load_settings(args.config, **{"input.sheet": args.sheet})
    _setup_logging(args.verbosity, args.log_file, [])
    paths = Paths.for_input(
        args.input, args.results or settings.output.results, args.journal or settings.journal.path
    )
    return cards_file(
        paths,
        settings,
        today=date.today(),
        output=Path(args.output) if args.output else None,
        summary=Path(args.summary) if args.summary else None,
        quiet=args.verbosity < 0,
        progress=not args.no_progress,
    )


def _status(args: argparse.Namespace) -> int:
    from importer.commands.run import Paths

    if args.journal:
        journal = Path(args.journal)
    elif args.input or args.results:
        journal = Paths.for_input(args.input or "input.csv", args.results).journal
    else:
        raise UsageError("status needs the spreadsheet, --results or --journal")
    status = journal_status(journal)
    if args.json:
        print(json.dumps({"journal": str(journal), **status.as_json()}, indent=2))
        return 0
    print(f"journal: {journal}")
    last = status.last_run
    if last is not None and last.rows is not None:
        finished = ", ".join(f"{n} {state}" for state, n in last.counts.items() if n)
        print(
            f"the last {last.command}'s sheet: {last.rows} rows, {last.codes} codes,"
            f" {last.invalid} invalid rows" + (f"; results: {finished}" if finished else "")
        )
    print(f"journal rows: {sum(status.counts.values())}")
    for name, count in status.counts.items():
        print(f"  {name}: {count}")
    if status.unreached:
        print(f"  new rows the last run never reached: {status.unreached}")
    print(f"left to do: {status.left}")
    if last is None:
        print("last run: none")
        return 0
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.started))
    if last.running:
        print(f"last run: {last.source}, started {when}, still running (pid {last.pid})")
    elif last.ended is None:
        print(
            f"last run: {last.source}, started {when}, did not finish (killed or crashed);"
            " run the same command again to finish the job"
        )
    else:
        took = last.ended - last.started
        print(f"last run: {last.source}, started {when}, {last.outcome} after {took:.1f} s")
        if last.stopped:
            print(f"  stopped because: {last.stopped}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM outside the sending loop (which stops cleanly on its own) ends like Ctrl-C: with
    # the journal consistent and a one-line message, never a bare -15.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _main(args: argparse.Namespace) -> int:
    try:
        if args.command in SHEET_COMMANDS:
            return _run(args)
        if args.command == "status":
            return _status(args)
        if args.command == "cards":
            return _cards(args)
        from importer.sandbox import serve  # aiohttp.web: only loaded to serve

        # Its own variable: the sandbox prints its key, which must never be the real one.
        serve(
            os.environ.get("ZYPE_SANDBOX_KEY", "sandbox"),
            parse_faults(args.faults),
            host=args.host,
            port=args.port,
            others=args.others,
        )
        return 0
    except ImporterError as exc:
        print(f"zype-import: error: {exc}", file=sys.stderr)
        if _NOTIFY and exc.exit_code in (2, 3):
            # It ended before writing its summary (a busy journal under cron, a full disk).
            summary = {"command": args.command, "input": getattr(args, "input", ""),
                       "stopped": str(exc)}  # fmt: skip
            notify_run(summary, exc.exit_code, _NOTIFY[-1], secrets=_SECRETS)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`zype-import status --json | head`): nothing to report.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout for the interpreter's exit
        return 0
    except KeyboardInterrupt:
        from importer.commands.context import ACTIVITY

        if ACTIVITY["marked"]:
            print(
                "zype-import: interrupted; every request sent is in the journal:"
                " the same command finishes the job",
                file=sys.stderr,
            )
        else:
            print("zype-import: interrupted before anything was sent", file=sys.stderr)
        return 3
    except Exception:
        # A bug, not a user error: keep the traceback for the report, without the key.
        print(redact(traceback.format_exc(), _SECRETS), file=sys.stderr, end="")
        print(
            "zype-import: internal error (a bug; please report it with the lines above)",
            file=sys.stderr,
        )
        return 3
