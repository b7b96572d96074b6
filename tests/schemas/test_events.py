import uuid

import pytest
from pydantic import ValidationError

from schemas.codec import (
    EVENT_TYPE_HEADER,
    SCHEMA_VERSION_HEADER,
    UndecodableEvent,
    decode,
    encode,
    event_type_of,
    header,
)
from schemas.events import (
    Emitter,
    Event,
    JobCancelled,
    JobCancelledPayload,
    JobCompleted,
    JobCompletedPayload,
    JobRequested,
    JobRequestedPayload,
    JobStarted,
    JobStartedPayload,
    Payload,
    SweepPlannedPayload,
    derived_event_id,
    follow_up,
)
from schemas.identifiers import job_id_for_idempotency_key


def a_request(**overrides: object) -> JobRequested:
    fields: dict[str, object] = {
        "tenant_id": "acme",
        "job_id": uuid.uuid4(),
        "correlation_id": "corr-1",
        "producer": "test",
        "payload": JobRequestedPayload(job_type="noop", parameters={"echo": {"a": 1}}),
    }
    return JobRequested(**(fields | overrides))  # type: ignore[arg-type]


def test_an_event_is_immutable() -> None:
    event = a_request()
    with pytest.raises(ValidationError):
        event.tenant_id = "other"  # type: ignore[misc]


def test_an_event_round_trips_through_the_codec_with_type_and_version_headers() -> None:
    event = a_request()
    key, value, headers = encode(event)
    assert key == str(event.job_id).encode()
    assert header(headers, EVENT_TYPE_HEADER) == "JobRequested"
    assert header(headers, SCHEMA_VERSION_HEADER) == "1"
    assert decode(value) == event


def test_the_envelope_carries_every_field_the_design_asks_for() -> None:
    _, value, _ = encode(a_request())
    import json

    envelope = json.loads(value)
    assert set(envelope) == {
        "event_id",
        "event_type",
        "schema_version",
        "occurred_at",
        "tenant_id",
        "job_id",
        "correlation_id",
        "causation_id",
        "producer",
        "payload",
    }
    assert envelope["occurred_at"].endswith("Z")


def test_a_follow_up_event_keeps_job_tenant_and_correlation_and_records_its_cause() -> None:
    request = a_request()
    started = follow_up(
        request, JobStarted, producer="worker", payload=JobStartedPayload(attempt=1, host="w1", process_id=7)
    )
    assert (started.job_id, started.tenant_id, started.correlation_id) == (
        request.job_id,
        request.tenant_id,
        request.correlation_id,
    )
    assert started.causation_id == request.event_id
    assert started.event_id != request.event_id


def test_decoding_garbage_says_why() -> None:
    with pytest.raises(UndecodableEvent, match="not a valid job event"):
        decode(b'{"event_type": "JobRequested"}')
    with pytest.raises(UndecodableEvent, match="empty"):
        decode(b"")


def test_an_unknown_event_type_is_undecodable() -> None:
    _, value, _ = encode(a_request())
    with pytest.raises(UndecodableEvent):
        decode(value.replace(b'"JobRequested"', b'"JobTeleported"'))


def test_a_naive_timestamp_is_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValidationError, match="timezone"):
        a_request(occurred_at=datetime(2026, 1, 1))


def test_a_tenant_id_with_spaces_is_refused() -> None:
    with pytest.raises(ValidationError, match="tenant_id"):
        a_request(tenant_id="acme corp")


def test_the_same_tenant_and_idempotency_key_always_give_the_same_job_id() -> None:
    first = job_id_for_idempotency_key("acme", "order-42")
    assert first == job_id_for_idempotency_key("acme", "order-42")
    assert first != job_id_for_idempotency_key("other", "order-42")
    assert first != job_id_for_idempotency_key("acme", "order-43")


def test_a_completed_event_requires_a_non_negative_duration() -> None:
    request = a_request()
    with pytest.raises(ValidationError, match="duration_ms"):
        follow_up(
            request, JobCompleted, producer="w", payload=JobCompletedPayload(attempt=1, result={}, duration_ms=-1)
        )


def test_an_emitter_names_its_service_and_derives_the_id_of_a_named_fact() -> None:
    request = a_request()
    emit = Emitter("worker")
    cancelled = emit(request, JobCancelled, JobCancelledPayload(attempt=1, reason="asked"), fact="cancelled")
    again = emit(request, JobCancelled, JobCancelledPayload(attempt=1, reason="asked"), fact="cancelled")
    assert cancelled.producer == "worker"
    assert cancelled.causation_id == request.event_id
    assert cancelled.event_id == again.event_id == derived_event_id(request.job_id, "cancelled")


def test_an_event_emitted_without_a_fact_gets_a_fresh_id_each_time() -> None:
    request = a_request()
    emit = Emitter("worker")
    payload = JobStartedPayload(attempt=1, host="w1")
    assert emit(request, JobStarted, payload).event_id != emit(request, JobStarted, payload).event_id


def test_an_event_declares_its_type_and_version_once_as_its_literal_fields() -> None:
    assert (JobStarted.TYPE, JobStarted.VERSION) == ("JobStarted", 2)
    assert a_request().event_type == JobRequested.TYPE


def test_an_event_without_its_type_and_version_literals_is_refused_when_declared() -> None:
    with pytest.raises(TypeError, match="declares no event_type"):

        class Nameless(Event):
            payload: Payload


def test_the_event_type_is_read_from_headers_as_pairs_or_as_a_mapping() -> None:
    _, _, headers = encode(a_request())
    assert event_type_of(headers) == "JobRequested"
    assert event_type_of(dict(headers)) == "JobRequested"
    assert event_type_of(None) is None
    assert event_type_of([("tenant_id", b"acme")]) is None


def test_a_plan_keeps_its_engine_and_settings_and_an_older_plan_dumps_as_it_was_logged() -> None:
    fingerprint = {
        "ticker": "AAPL",
        "source": "bundled",
        "sha256": "ab" * 32,
        "bars": 104,
        "first": "2018-01-01",
        "last": "2019-12-30",
        "periods_per_year": 52.0,
    }
    older = {"attempt": 1, "chunk_count": 1, "backtest_count": 1, "data": [fingerprint], "parameters": {}}
    assert SweepPlannedPayload.model_validate(older).model_dump(mode="json") == older
    newer = older | {"engine_version": "0123456789abcdef (numpy 2, numba 0)", "settings": {"sweep_chunk_size": 10}}
    assert SweepPlannedPayload.model_validate(newer).model_dump(mode="json") == newer
