import uuid
from datetime import UTC, datetime

from processors.finished_retries import _attempt, retry_key
from schemas.codec import encode
from schemas.events import (
    JobCompleted,
    JobCompletedPayload,
    JobDeadLettered,
    JobDeadLetteredPayload,
    JobRetryScheduled,
    JobRetryScheduledPayload,
)

ENVELOPE = {"tenant_id": "acme", "job_id": uuid.uuid4(), "correlation_id": "c", "producer": "test"}


def test_a_retry_key_names_the_job_and_the_attempt() -> None:
    assert retry_key(b"job-1", 2) == b"job-1:2"
    assert retry_key(b"job-1", 2) != retry_key(b"job-1", 3)


def test_the_attempt_an_outcome_ends_is_read_from_its_payload() -> None:
    completed = JobCompleted(**ENVELOPE, payload=JobCompletedPayload(attempt=3, result={}, duration_ms=1))
    failed = JobRetryScheduledPayload(attempt=2, next_attempt=3, delay_seconds=1, due_at=datetime.now(UTC),
                                      error_type="E", error_message="m")  # fmt: skip
    scheduled = JobRetryScheduled(**ENVELOPE, payload=failed)
    spent = JobDeadLetteredPayload(attempts=4, reason="spent", history=[], dead_letter_topic="dl")
    dead = JobDeadLettered(**ENVELOPE, payload=spent)
    assert _attempt(encode(completed)[1]) == 3
    assert _attempt(encode(scheduled)[1]) == 2, "a scheduled retry ends the attempt that failed, not the next"
    assert _attempt(encode(dead)[1]) == 4


def test_an_outcome_no_worker_can_read_ends_no_attempt() -> None:
    assert _attempt(b"{not json") is None
    assert _attempt(None) is None
