"""Event versions that are no longer appended but are still in the log, read through ``schemas.upcasting``.

Their JSON Schemas stay published exactly as they were, which is why the classes keep their original names.
"""

from typing import Literal

from pydantic import Field

from schemas.events import Event, Payload


class JobStartedPayload(Payload):
    attempt: int = Field(ge=1)
    worker: str = Field(min_length=1, max_length=128)


class JobStarted(Event):
    event_type: Literal["JobStarted"] = "JobStarted"
    schema_version: Literal[1] = 1
    payload: JobStartedPayload


SUPERSEDED_EVENT_TYPES: tuple[type[Event], ...] = (JobStarted,)
