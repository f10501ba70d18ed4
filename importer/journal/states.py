"""The journal's states: how a row's state changes (:func:`transition`), and what a run does
with a row given its entry (:func:`plan`). Pure functions, table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from importer.errors import JournalError
from importer.models import Record, Status


class Entry(NamedTuple):
    """A row as the journal last recorded it: what resuming and the results file need.

    `unsure` is 0 or 1 as SQLite stores it: true means a request may have reached the API
    without an answer, so the code is looked up before it is sent again.

    `row` and `code` are filled only in entries written by this run; entries loaded from disk
    leave them at ``0`` and ``""``. Nothing needs them per row (the results file takes both from
    the record), and every column loaded costs a measurable share of opening a million-row
    journal. :meth:`Journal.generated_codes` and :meth:`Journal.known_codes` read codes from disk.
    """

    fingerprint: str
    status: str
    api_id: str
    nice_code: str
    error: str
    http_status: int | None
    attempts: int
    unsure: int
    row: int = 0
    code: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run does with a valid record, given the journal."""

    send: bool
    unsure: bool = False


#: The three possible plans, built once: :func:`plan` runs for every row of every rerun.
SKIP = Plan(send=False)
SEND = Plan(send=True)
LOOK_UP_FIRST = Plan(send=True, unsure=True)


#: Journal states a row can be in ("" for a row the journal does not know yet).
_NEW = ""
_P, _S, _C, _R, _F = (
    Status.PENDING,
    Status.SENDING,
    Status.CREATED,
    Status.REJECTED,
    Status.FAILED,
)
_DG, _DD, _FD = Status.DELETING, Status.DELETED, Status.FOUND

#: (state, event) -> next state. Events are the marks made before a request (``generate``,
#: ``send``, ``delete``) and the outcome statuses recorded after one, per operation.
TRANSITIONS: dict[tuple[str, str], str] = {
    # a generated code stored before anything is sent (a new one after a deletion or a clash)
    **{(state, "generate"): _P for state in (_NEW, _P, _DD, _R)},
    # a create marked before it goes out
    **{(state, "send"): _S for state in (_NEW, _P, _F, _R, _S, _DD)},
    **{(_S, f"create:{status}"): status for status in (_C, _R, _F, _P, _S)},
    # a delete marked before it goes out
    (_C, "delete"): _DG,
    (_DG, "delete"): _DG,
    (_DG, f"delete:{Status.DELETED}"): _DD,
    (_DG, f"delete:{Status.REJECTED}"): _C,  # refused: the code is still there
    (_DG, f"delete:{Status.KEPT}"): _C,
    (_DG, f"delete:{Status.PENDING}"): _C,  # never sent
    (_DG, f"delete:{Status.FAILED}"): _DG,  # may have been applied: read again next time
    (_DG, f"delete:{Status.SENDING}"): _DG,
    # revoke: a listed code, its looked-up id stored with the mark before its DELETE goes out
    **{(state, "revoke"): _DG for state in (_NEW, _FD, _DG)},
    (_DG, f"revoke:{Status.DELETED}"): _DD,
    **{(_DG, f"revoke:{status}"): _FD for status in (Status.KEPT, _P, _R)},
    (_DG, f"revoke:{_F}"): _DG,  # may have been applied: read again next time
    (_DG, f"revoke:{_S}"): _DG,
    # an update changes the values, never the state; every other verdict leaves the row as it is
    **{
        (_C, f"update:{status}"): _C
        for status in (
            Status.UPDATED,
            Status.MISSING,
            Status.KEPT,
            _R,
            _F,
            _P,
            _S,
        )
    },
}


def transition(state: str, event: str) -> str:
    """The row's next journal state; :class:`~importer.errors.JournalError` for a change the
    journal does not allow (a bug: e.g. recording an outcome for a row never marked)."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise JournalError(
            f"journal: a row in state '{state or 'new'}' cannot take '{event}' (a bug)",
            exit_code=3,
        ) from None


def plan(record: Record, entry: Entry | None) -> Plan:
    """Decide from the journal whether *record* is sent, and whether it is looked up first.

    - ``created``: never sent again; if the row was edited since, the results file reports it
      (``changed-after-create``), nothing is created again.
    - ``rejected``: sent again only if its content changed, and looked up first: the rejection
      may have been "already taken" for a code that now matches the row.
    - ``sending`` (a crash while a request was out) or an unsure ``failed``/``pending`` row:
      looked up first, sent only if the API does not hold it.
    - ``deleting``: an undo is unfinished; never sent until ``undo`` settles it.
    - ``pending``, ``failed``, ``deleted`` or unknown: sent.
    """
    if entry is None:
        return SEND
    status = entry.status
    if status == Status.CREATED or status == Status.DELETING:
        return SKIP
    if status == Status.DELETED:
        return SEND
    if status == Status.REJECTED:
        return SKIP if entry.fingerprint == record.fingerprint else LOOK_UP_FIRST
    if status == Status.SENDING or entry.unsure:
        return LOOK_UP_FIRST
    return SEND
