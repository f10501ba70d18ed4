"""Plain typed records passed between the stages.

spreadsheet --load--> frame --validate--> Record + RowIssue --submit--> Outcome --journal-->
results file. Only :mod:`importer.load` and :mod:`importer.validate` see pandas.
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
    """A row's state. The first five appear in the results file; `sending` only in the journal."""

    CREATED = "created"
    INVALID = "invalid"
    REJECTED = "rejected"
    FAILED = "failed"
    PENDING = "pending"
    #: Marked before a request goes out; found at start-up it means "look the code up first".
    SENDING = "sending"


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

    def with_attempts(self, attempts: int) -> Outcome:
        """This outcome after *attempts* POSTs; under half the cost of ``dataclasses.replace``."""
        return Outcome(
            self.status,
            self.api_id,
            self.nice_code,
            self.error,
            self.http_status,
            attempts,
            self.unsure,
        )


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
