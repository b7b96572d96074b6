import json
import uuid

import pytest

from schemas import superseded
from schemas.codec import UndecodableEvent, decode
from schemas.events import JobStarted
from schemas.upcasting import split_worker, upcast


def a_version_1_start(worker: str) -> bytes:
    event = superseded.JobStarted(
        tenant_id="acme",
        job_id=uuid.uuid4(),
        correlation_id="c",
        producer="processor",
        payload=superseded.JobStartedPayload(attempt=2, worker=worker),
    )
    return event.model_dump_json().encode()


def test_a_version_1_start_is_read_as_version_2_with_host_and_process_split() -> None:
    event = decode(a_version_1_start("worker-7:4242"))
    assert isinstance(event, JobStarted)
    assert (event.schema_version, event.payload.host, event.payload.process_id, event.payload.attempt) == (
        2,
        "worker-7",
        4242,
        2,
    )


@pytest.mark.parametrize(
    ("worker", "expected"),
    [
        ("legacy-worker", ("legacy-worker", None)),
        ("host:with:colons:12", ("host:with:colons", 12)),
        ("host:pid", ("host:pid", None)),
        (":12", (":12", None)),
        ("host:0", ("host:0", None)),
    ],
)
def test_a_worker_name_without_a_positive_numeric_pid_is_all_host(
    worker: str, expected: tuple[str, int | None]
) -> None:
    assert split_worker(worker) == expected


def test_an_event_at_its_current_version_passes_through_unchanged() -> None:
    envelope = {"event_type": "JobStarted", "schema_version": 2, "payload": {"attempt": 1, "host": "h"}}
    assert upcast(envelope) == envelope


def test_an_invalid_version_1_event_is_still_undecodable_with_the_reason() -> None:
    broken = json.loads(a_version_1_start("w:1"))
    del broken["payload"]["worker"]
    with pytest.raises(UndecodableEvent, match="worker"):
        decode(json.dumps(broken).encode())


def test_a_version_no_upcaster_knows_is_undecodable() -> None:
    future = json.loads(a_version_1_start("w:1")) | {"schema_version": 9}
    with pytest.raises(UndecodableEvent):
        decode(json.dumps(future).encode())
