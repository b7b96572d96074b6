"""A job's state as of a moment in the log: an offset in its partition, or a time. Folded with the projector's own
fold, so "as of now" equals the row in ``pipeline_jobs``."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from read_model.job_state import JobRow, already_applied, apply_event
from schemas.codec import decode_envelope
from schemas.events import ENVELOPE_FIELDS, Event


@dataclass(frozen=True)
class AsOf:
    offset: int | None = None
    moment: datetime | None = None

    def includes(self, event: Event, offset: int) -> bool:
        if self.offset is not None and offset > self.offset:
            return False
        return self.moment is None or event.occurred_at <= self.moment

    def __str__(self) -> str:
        if self.offset is not None:
            return f"as of offset {self.offset}"
        if self.moment is not None:
            return f"as of {self.moment.isoformat()}"
        return "now"


def parse_as_of(text: str | None) -> AsOf:
    """``None`` (now), an offset (digits), or an ISO 8601 time (UTC when it names no zone)."""
    if text is None or not text.strip():
        return AsOf()
    text = text.strip()
    if text.isdigit():
        return AsOf(offset=int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"as_of must be an offset (a whole number) or an ISO 8601 time, not {text!r}") from None
    return AsOf(moment=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


# The timeline stores these without their result rows (they are in trading_sweep_results); the job's state does not
# depend on them.
_ROWS_TRIMMED = {"SweepResultsRecorded", "SweepCallbackReceived"}


def event_from_timeline(row: Mapping[str, Any]) -> Event:
    """A ``job_events`` row back into its event."""
    payload = dict(row["payload"])
    if row["event_type"] in _ROWS_TRIMMED:
        payload.pop("row_count", None)
        payload["rows"] = []
    envelope = {name: row[name] for name in ENVELOPE_FIELDS}
    return decode_envelope(envelope | {"payload": payload})


def fold_job(history: Iterable[tuple[Event, int, int]], as_of: AsOf = AsOf()) -> JobRow | None:
    """The job's row after its events (``(event, partition, offset)`` in log order) up to ``as_of``."""
    row: JobRow | None = None
    for event, partition, offset in history:
        if not as_of.includes(event, offset):
            break
        if already_applied(row, partition, offset):
            continue
        row = apply_event(row, event, partition, offset)
    return row
