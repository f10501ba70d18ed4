"""Change a created code: ``PUT`` its new values, or ``DELETE`` it.

Both are idempotent on the API's side, so a retry after a lost answer simply sends the same
request again: a second PUT writes the same values, and a 404 to a DELETE in the API's own
format means the code is gone, whether our first DELETE or someone in Zype's admin removed it.
Neither is sent for a redeemed code; the commands read the live state first
(:mod:`importer.api.live`) and keep those.
"""

from __future__ import annotations

from importer.api import wire
from importer.api.engine import Attempt, Steps
from importer.api.ops.rows import Held, RowOutcomes
from importer.errors import ServerError
from importer.models import Outcome, Status

#: What a code Zype no longer holds is reported with.
GONE = "Zype no longer holds this code (deleted in Zype's admin?)"


class Update(RowOutcomes):
    """``PUT /redemption_codes/{id}`` with the row's current date and entitlement."""

    def steps(self, item: Held, state: Attempt) -> Steps[Outcome]:
        request = wire.update(item.api_id, item.record)
        answer = yield request
        if 200 <= answer.status < 300:
            obj = wire.code_object(answer)
            if obj is None:
                raise ServerError(
                    f"HTTP {answer.status} without the updated code", http_status=answer.status
                )
            live = wire.live_code(obj)
            if not live.holds(item.record):
                return Outcome(
                    Status.FAILED,
                    api_id=item.api_id,
                    error=f"the API answered with other values than sent ({live.fingerprint})",
                    http_status=answer.status,
                    attempts=state.writes,
                )
            return Outcome(
                Status.UPDATED,
                api_id=item.api_id,
                nice_code=live.nice_code,
                http_status=answer.status,
                attempts=state.writes,
                fingerprint=live.fingerprint,
                content_title=live.content_title,
            )
        if answer.status == 404 and wire.is_refusal(answer):
            return Outcome(
                Status.MISSING,
                api_id=item.api_id,
                error=GONE,
                http_status=404,
                attempts=state.writes,
            )
        wire.raise_for(answer, request)
        raise AssertionError("unreachable")  # pragma: no cover - raise_for raised


class Delete(RowOutcomes):
    """``DELETE /redemption_codes/{id}``; a 404 in the API's format means it is gone."""

    def steps(self, item: Held, state: Attempt) -> Steps[Outcome]:
        request = wire.delete(item.api_id)
        answer = yield request
        if 200 <= answer.status < 300:
            return Outcome(
                Status.DELETED, api_id=item.api_id, http_status=answer.status,
                attempts=state.writes,
            )  # fmt: skip
        if answer.status == 404 and wire.is_refusal(answer):
            return Outcome(
                Status.DELETED,
                api_id=item.api_id,
                error="" if state.writes > 1 or state.doubted else "already gone from Zype",
                http_status=404,
                attempts=state.writes,
            )
        wire.raise_for(answer, request)
        raise AssertionError("unreachable")  # pragma: no cover - raise_for raised


UPDATE = Update()
DELETE = Delete()
