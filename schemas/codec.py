"""How events travel on Kafka: JSON value, job id as key, type and version repeated as headers.

The headers let a consumer skip events it does not handle without decoding the value.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.events import Event, JobEvent
from schemas.upcasting import can_upcast, upcast

EVENT_TYPE_HEADER = "event_type"
SCHEMA_VERSION_HEADER = "schema_version"
TENANT_HEADER = "tenant_id"

Headers = list[tuple[str, bytes]]

_job_event_adapter: TypeAdapter[Any] = TypeAdapter(JobEvent)


class UndecodableEvent(ValueError):
    """A record that is not a valid event of a known type and version."""


def encode(event: Event) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of the record that carries ``event``."""
    headers: Headers = [
        (EVENT_TYPE_HEADER, event.event_type.encode()),
        (SCHEMA_VERSION_HEADER, str(event.schema_version).encode()),
        (TENANT_HEADER, event.tenant_id.encode()),
    ]
    return str(event.job_id).encode(), event.model_dump_json().encode(), headers


RecordHeaders = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None
"""A record's headers as the clients hand them over: pairs (aiokafka), or a mapping (Faust)."""


def header(headers: RecordHeaders, name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    for key, value in items:
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


def event_type_of(headers: RecordHeaders) -> str | None:
    """The type of the event a record carries, from its headers: a consumer skips what it does not handle by it,
    without decoding the value."""
    return header(headers, EVENT_TYPE_HEADER)


def decode_envelope(envelope: dict[str, Any]) -> Event:
    """An event from its envelope as plain data (a stored timeline row, say), upcast when it is an older version."""
    try:
        event: Event = _job_event_adapter.validate_python(upcast(envelope))
    except ValidationError as exc:
        raise UndecodableEvent(f"not a valid job event: {exc.errors(include_url=False)[:3]}") from exc
    return event


def decode(value: bytes | None) -> Event:
    """The event in a record's value; raises UndecodableEvent with the reason when there is none."""
    if not value:
        raise UndecodableEvent("empty record value")
    try:
        event: Event = _job_event_adapter.validate_json(value)
        return event
    except ValidationError as exc:
        invalid = exc
    # Not an event at its current version: perhaps an older version that an upcaster reads (the rarer path).
    try:
        envelope = json.loads(value)
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and can_upcast(envelope):
        try:
            upcast_envelope = upcast(envelope)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # not even the old version's shape
            raise UndecodableEvent(
                f"not a valid job event: version {envelope.get('schema_version')} of "
                f"{envelope.get('event_type')} without {exc!r}"
            ) from exc
        try:
            upcast_event: Event = _job_event_adapter.validate_python(upcast_envelope)
            return upcast_event
        except ValidationError as exc:
            invalid = exc
    raise UndecodableEvent(f"not a valid job event: {invalid.errors(include_url=False)[:3]}") from invalid
