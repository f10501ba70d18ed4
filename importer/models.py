"""Plain typed records passed between the stages.

spreadsheet --load--> frame --validate--> Record + RowIssue --submit--> Outcome --journal-->
results file. Only :mod:`importer.sheet.load` and :mod:`importer.rules.validate` see pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

#: The four things a code can unlock, in the order the API documents them.
ENTITLEMENT_KINDS: tuple[str, ...] = ("video", "playlist", "plan", "pass_plan")


def entitlement_field(kind: str) -> str:
    """The API's field for an entitlement kind: ``video`` -> ``video_id``."""
    return f"{kind}_id"


class Status(StrEnum):
    """A row's state, in the journal, in an operation's outcome and in the results file.

    The journal holds ``pending``, ``sending``, ``created``, ``rejected``, ``failed``,
    ``deleting`` and ``deleted`` (see :func:`importer.journal.transition`), and for ``revoke``
    ``found``; ``updated``, ``kept`` and ``missing`` are what one command did to a created code,
    shown in its results.
    """

    CREATED = "created"
    INVALID = "invalid"
    REJECTED = "rejected"
    FAILED = "failed"
    PENDING = "pending"
    #: Marked before a create goes out; found at start-up it means "look the code up first".
    SENDING = "sending"
    #: Marked before a DELETE goes out; found at start-up, the code may already be gone.
    DELETING = "deleting"
    #: The code was deleted by ``undo`` (or was found already gone).
    DELETED = "deleted"
    #: A created code whose date or entitlement ``run --update`` changed to the sheet's.
    UPDATED = "updated"
    #: A created code left as it is on purpose: a customer redeemed it.
    KEPT = "kept"
    #: A created code Zype no longer holds (deleted in Zype's admin).
    MISSING = "missing"
    #: A row ``undo`` or ``audit`` finds no created code for.
    NOT_CREATED = "not created"
    #: A listed code ``revoke`` deleted (in this run or an earlier one).
    REVOKED = "revoked"
    #: A listed code Zype does not hold (``revoke``).
    NOT_FOUND = "not found"
    #: A listed code ``revoke`` looked up and did not delete: a DELETE refused, or never sent.
    FOUND = "found"


@dataclass(frozen=True, slots=True)
class RowIssue:
    """Why a spreadsheet row will not be sent.

    `row` is the row number the spreadsheet shows (header = 1); `code` is a stable identifier
    (``missing-expiration``, ``duplicate-code``, ...), documented in the README.
    """

    row: int
    code: str
    column: str
    message: str
    #: The row's code as written (may be empty), so the results file can show it.
    value: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    """One code to create: a valid row, or one of the N codes of a ``quantity`` row.

    `key` identifies the row across reruns and edits: ``code:<CODE>`` when the spreadsheet gives
    the code, ``gen:<content hash>:<occurrence>:<n>`` when the code is generated (so a row
    inserted above does not change which code belongs to which row). `code` is ``""`` until a
    generated code is assigned from the journal or freshly made.
    """

    row: int
    key: str
    code: str
    expiration_date: str
    kind: str
    entitlement_id: str
    generated: bool = False

    @property
    def fingerprint(self) -> str:
        """What, besides the code, the API is asked to store; a change means the row was edited."""
        return f"{self.expiration_date}|{self.kind}|{self.entitlement_id}"

    @classmethod
    def from_fingerprint(cls, row: int, key: str, code: str, fingerprint: str) -> Record:
        """The record a journal row stands for, rebuilt from what the journal stores."""
        expiration_date, kind, entitlement_id = fingerprint.split("|")
        return cls(row, key, code, expiration_date, kind, entitlement_id, key.startswith("gen:"))

    def payload(self) -> dict[str, dict[str, str]]:
        """The JSON body of ``POST /redemption_codes``."""
        return {
            "redemption_code": {
                "code": self.code,
                "expiration_date": self.expiration_date,
                entitlement_field(self.kind): self.entitlement_id,
            }
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one record after its last request."""

    status: Status
    api_id: str = ""
    nice_code: str = ""
    error: str = ""
    http_status: int | None = None
    attempts: int = 0
    #: The API may hold this code although no success came back: look it up before resending.
    unsure: bool = False
    #: A stable reason where one helps a later step (``code-taken``: another owner holds the code).
    issue: str = ""
    #: What the API now holds (date|kind|id), when an operation changed it (``updated``).
    fingerprint: str = ""
    #: The title Zype gives what the code unlocks (``content_title``), when the answer had one.
    content_title: str = ""


class ResultLine(NamedTuple):
    """One line of the results file, its fields in the file's column order.

    A named tuple rather than a dataclass: a million of them are built for a million-row sheet,
    and a tuple is both the cheapest to build and already the row the writer needs.
    """

    row: int
    status: Status
    code: str
    api_id: str = ""
    error: str = ""
    issue: str = ""
    entitlement_type: str = ""
    entitlement_id: str = ""
    expiration_date: str = ""
    nice_code: str = ""
    attempts: int = 0
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """One second of a run, as the request engine recorded it (the report page's timeline)."""

    #: Seconds since the run's first request.
    second: int
    #: Requests sent in that second (all methods).
    requests: int
    #: Tries of an item started again after a failure.
    retries: int
    #: 429 answers received.
    throttled: int
    #: 5xx, timeouts and connection errors received.
    failures: int
    #: The limiter's pace (requests/s) at that second's last request; 0.0 when none was sent.
    pace: float = 0.0
