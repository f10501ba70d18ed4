"""What a command did, as a typed value (:class:`Summary`), and the one place its outcome becomes
the contract's exit code (:func:`exit_code`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importer.api.engine import Tally
from importer.errors import StopRun
from importer.models import Status, Tick
from importer.outputs.files import atomic_write


@dataclass
class Summary:
    """What a command did, for stderr, ``--summary`` JSON, the report page and the webhook."""

    command: str
    counts: Counter[str] = field(default_factory=Counter)
    #: The spreadsheet, as given.
    input: str = ""
    duration: float = 0.0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    lookups: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    #: Codes done per second of the run (created, deleted, updated: whatever the command does).
    rate: float = 0.0
    results: str | None = None
    journal: str | None = None
    stopped: str | None = None
    #: Command-specific figures (``would_delete``, ``expiring``, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    timeline: list[Tick] = field(default_factory=list)
    #: ``--rate auto``: the pace found (requests/s) and the requests in flight at the end.
    pace: float | None = None
    in_flight: int | None = None

    def take(self, tally: Tally) -> None:
        """Copy the engine's counters."""
        self.requests = tally.requests
        self.retries = tally.retries
        self.throttled = tally.throttled
        self.lookups = tally.lookups
        self.methods = dict(tally.methods)
        self.timeline = tally.timeline()

    def listed_counts(self) -> dict[str, int]:
        """The counts per status: the command's usual ones always (zeros included), then any
        other that occurred."""
        counts = {status: self.counts.get(status, 0) for status in LISTED[self.command]}
        counts.update((status, n) for status, n in sorted(self.counts.items()) if n)
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``--summary``)."""
        data: dict[str, Any] = {
            "command": self.command,
            "input": self.input,
            "rows": sum(self.counts.values()),
            "counts": self.listed_counts(),
            "duration": round(self.duration, 3),
        }
        if self.requests or self.command != "validate":
            data.update(
                requests=self.requests,
                retries=self.retries,
                throttled=self.throttled,
                lookups=self.lookups,
                methods=self.methods,
                rate=round(self.rate, 2),
            )
        for name in ("results", "journal", "stopped", "pace", "in_flight"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        data.update(self.extra)
        return data

    def lines(self) -> str:
        """The few lines printed on stderr."""
        parts = ", ".join(f"{n} {status}" for status, n in self.listed_counts().items() if n)
        out = [f"{sum(self.counts.values())} result lines: {parts or 'nothing to do'}"]
        if self.requests or self.command != "validate":
            methods = ", ".join(f"{n} {m}" for m, n in sorted(self.methods.items()))
            out.append(
                f"{self.requests} requests ({self.retries} retries, {self.throttled} answered 429,"
                f" {self.lookups} lookups) in {self.duration:.1f} s"
                + (f", {self.rate:.1f} codes/s" if self.rate else "")
                + (f"; {methods}" if methods else "")
            )
        if self.pace:
            out.append(f"--rate auto: found {self.pace:.1f} requests/s, {self.in_flight} in flight")
        for name, value in self.extra.items():
            if isinstance(value, int | str) and value not in ("", 0):
                out.append(f"{name.replace('_', ' ')}: {value}")
        for name in ("results", "journal"):
            if getattr(self, name):
                out.append(f"{name}: {getattr(self, name)}")
        if self.stopped:
            out.append(f"stopped: {self.stopped}")
        return "\n".join(out)


_RUN_LISTED = (
    Status.CREATED, Status.INVALID, Status.REJECTED, Status.FAILED, Status.PENDING,
)  # fmt: skip
#: Per command, the statuses its summary always lists, zeros included.
LISTED: Mapping[str, tuple[str, ...]] = {
    "run": _RUN_LISTED,
    "validate": _RUN_LISTED,
    "undo": (Status.DELETED, Status.KEPT, Status.FAILED, Status.PENDING, Status.NOT_CREATED),
    "audit": ("available", "redeemed", "expired", Status.MISSING, Status.NOT_CREATED),
    "revoke": (
        Status.REVOKED,
        Status.KEPT,
        Status.NOT_FOUND,
        Status.INVALID,
        Status.FAILED,
        Status.PENDING,
    ),
}

#: Per command, the result statuses that make the exit code 1 ("finished, but not all done").
NOT_DONE: Mapping[str, frozenset[str]] = {
    "run": frozenset({Status.INVALID, Status.REJECTED, Status.FAILED, Status.KEPT, Status.MISSING}),
    "validate": frozenset({Status.INVALID}),
    "undo": frozenset({Status.KEPT, Status.FAILED, Status.REJECTED}),
    "audit": frozenset({Status.MISSING, "changed", Status.FAILED}),
    "revoke": frozenset({Status.KEPT, Status.INVALID, Status.FAILED}),
}


def exit_code(command: str, counts: Mapping[str, int], stopped: StopRun | None) -> int:
    """The contract's exit code for a command that ran: 3 stopped part-way or rows left
    pending, 1 some rows not done (per :data:`NOT_DONE`), else 0."""
    if stopped is not None:
        return stopped.exit_code
    if any(counts.get(status, 0) for status in NOT_DONE[command]):
        return 1
    # Rows a run or an undo left pending are picked up by the next one; validate sends nothing.
    return 3 if command != "validate" and counts.get(Status.PENDING, 0) else 0


def write_summary(path: str | Path, summary: Mapping[str, Any]) -> None:
    """Write the summary as JSON, atomically."""
    atomic_write(Path(path), lambda h: json.dump(summary, h, indent=2, sort_keys=True))
