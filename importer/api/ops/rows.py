"""What every row operation shares: the item naming a created code, and the give-up outcomes."""

from __future__ import annotations

from dataclasses import dataclass

from importer.api.engine import Attempt
from importer.errors import ApiError, PermanentApiError
from importer.models import Outcome, Record, Status


@dataclass(frozen=True, slots=True)
class Held:
    """A code the journal records as created: the row's record (its current values in the sheet
    for an update) and the API's id for it."""

    record: Record
    api_id: str


class RowOutcomes:
    """The outcome of a row operation the engine gave up on, or stopped before it finished."""

    def gave_up(self, item: object, state: Attempt, error: ApiError) -> Outcome:
        """``rejected`` when the API refused for good, else ``failed`` (unsure if it may have
        been applied)."""
        if isinstance(error, PermanentApiError):
            return Outcome(
                Status.REJECTED,
                error=error.message,
                http_status=error.http_status,
                attempts=state.writes,
            )
        return Outcome(
            Status.FAILED,
            error=error.message,
            http_status=error.http_status,
            attempts=state.writes,
            unsure=state.unsure,
        )

    def stopped(self, item: object, state: Attempt) -> Outcome:
        """``pending``, or ``sending`` when a request may have been applied (looked up next)."""
        status = Status.SENDING if state.unsure else Status.PENDING
        return Outcome(status, error="interrupted", attempts=state.writes, unsure=state.unsure)
