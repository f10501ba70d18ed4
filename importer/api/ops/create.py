"""Create one record's code: ``POST /redemption_codes``, with lookups wherever a code may exist.

One try goes like this::

    unsure? ── GET ?code= ── same code, date, entitlement ──> created (its id adopted)
       │                 ├── other values ─────────────────> rejected (code-taken)
       │ no              └── absent ──┐
       └──────────────────────────────┴─ POST ── 201 + id ──> created
                                               ├ other 2xx ─> "may have been created": retried,
                                               │              looked up first
                                               ├ 422/4xx ───> rejected (a retry or a
                                               │              generated code: GET first)
                                               └ (the rest: :func:`importer.api.wire.raise_for`)

No code is ever created twice: whenever an earlier request for a record may have reached the API
(timeout, dropped connection, 5xx, an answer without the created code, or a crash while the
journal said ``sending``), the code is looked up before it is sent again, and a "taken" answer
to a retry is settled by a lookup too. A looked-up code is adopted only when it holds exactly
what was sent, date included: a code with other values belongs to someone else, and its id never
reaches the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from importer.api import wire
from importer.api.engine import Attempt, Steps
from importer.api.ops.rows import RowOutcomes
from importer.errors import RejectedError, ServerError
from importer.models import Outcome, Record, Status

#: The issue of a code another owner holds: a generated code gets a new one.
CODE_TAKEN = "code-taken"


def settle(record: Record, found: Sequence[dict[str, Any]], attempts: int = 0) -> Outcome | None:
    """Decide from a lookup: the same values → created; other values → rejected; absent → None."""
    for obj in found:
        if not isinstance(obj, dict):
            continue
        live = wire.live_code(obj)
        if live.code.casefold() != record.code.casefold():
            continue
        if live.holds(record) and wire.is_api_id(live.api_id):
            return Outcome(
                Status.CREATED,
                api_id=live.api_id,
                nice_code=live.nice_code,
                http_status=200,
                attempts=attempts,
                content_title=live.content_title,
            )
        held = f"{live.kind or 'no entitlement'} {live.entitlement_id}".rstrip()
        return Outcome(
            Status.REJECTED,
            http_status=422,
            error=(
                f"code {record.code} already exists on the API with other values"
                f" ({held}, expiring {live.expiration_date or 'on no date'})"
            ),
            attempts=attempts,
            issue=CODE_TAKEN,
        )
    return None


class Create(RowOutcomes):
    """The create protocol; its item is a :class:`~importer.models.Record`."""

    def steps(self, item: Record, state: Attempt) -> Steps[Outcome]:
        if state.unsure:
            found = yield from self.lookup(item, state)
            if found is not None:
                return found
            state.unsure = False
        request = wire.create(item)
        answer = yield request
        if 200 <= answer.status < 300:
            obj = wire.code_object(answer)
            if answer.status == 201 and obj is not None and wire.is_api_id(obj["_id"]):
                return Outcome(
                    Status.CREATED,
                    api_id=obj["_id"],
                    nice_code=str(obj.get("nice_code") or ""),
                    http_status=201,
                    attempts=state.writes,
                    content_title=wire.content_title(obj),
                )
            # A proxy's page, a body without the id, a 200: the code may exist without our
            # knowing its id. A ServerError is retried, and the retry looks the code up first.
            raise ServerError(
                f"HTTP {answer.status} without the created code's id", http_status=answer.status
            )
        try:
            wire.raise_for(answer, request)
        except RejectedError:
            if state.writes > 1 or state.doubted or item.generated:
                # Maybe our own earlier request, answered "already taken": only a lookup knows.
                # A generated code refused is looked up too: if someone else holds it, the run
                # gives the row a new code (CODE_TAKEN) instead of leaving it rejected for good.
                found = yield from self.lookup(item, state)
                if found is not None:
                    return found
            raise
        raise AssertionError("unreachable")  # pragma: no cover - raise_for raised

    def lookup(self, record: Record, state: Attempt) -> Steps[Outcome | None]:
        """``GET ?code=``: :func:`settle`'s verdict. An answer that settles nothing (another 4xx
        in the API's format, a 200 without a list) is retried, never taken for "absent"."""
        request = wire.find(record.code)
        answer = yield request
        if answer.status == 200:
            listed = wire.code_list(answer)
            if listed is not None:
                return settle(record, listed[0], state.writes)
            raise ServerError("lookup answered HTTP 200 without a list of codes", http_status=200)
        if wire.is_refusal(answer):
            raise ServerError(
                f"lookup failed (HTTP {answer.status}: {wire.message(answer)})",
                http_status=answer.status,
            )
        wire.raise_for(answer, request)
        raise AssertionError("unreachable")  # pragma: no cover - raise_for raised


CREATE = Create()
