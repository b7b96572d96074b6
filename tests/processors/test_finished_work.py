import uuid
from datetime import UTC, datetime

from processors.finished_work import FinishedChunks, attempt_ended, retry_key
from schemas.events import (
    JobCompleted,
    JobCompletedPayload,
    JobDeadLettered,
    JobDeadLetteredPayload,
    JobFailed,
    JobFailedPayload,
    JobRetryScheduled,
    JobRetryScheduledPayload,
    SweepResultsRecorded,
    SweepResultsRecordedPayload,
)
from schemas.sweeps import chunk_record_key

ENVELOPE = {"tenant_id": "acme", "job_id": uuid.uuid4(), "correlation_id": "c", "producer": "test"}


def test_a_retry_key_names_the_job_and_the_attempt() -> None:
    assert retry_key(b"job-1", 2) == b"job-1:2"
    assert retry_key(b"job-1", 2) != retry_key(b"job-1", 3)


def test_the_attempt_an_outcome_ends_is_read_from_its_payload() -> None:
    completed = JobCompleted(**ENVELOPE, payload=JobCompletedPayload(attempt=3, result={}, duration_ms=1))
    failed = JobRetryScheduledPayload(
        attempt=2, next_attempt=3, delay_seconds=1, due_at=datetime.now(UTC), error_type="E", error_message="m"
    )
    scheduled = JobRetryScheduled(**ENVELOPE, payload=failed)
    spent = JobDeadLetteredPayload(attempts=4, reason="spent", history=[], dead_letter_topic="dl")
    dead = JobDeadLettered(**ENVELOPE, payload=spent)
    assert attempt_ended(completed) == 3
    assert attempt_ended(scheduled) == 2, "a scheduled retry ends the attempt that failed, not the next"
    assert attempt_ended(dead) == 4


async def test_a_chunk_is_done_once_its_results_are_recorded_or_its_sweep_has_ended() -> None:
    job, other = str(uuid.uuid4()), str(uuid.uuid4())
    chunks = FinishedChunks()
    results = SweepResultsRecordedPayload(chunk_index=4, chunk_count=9, rows=[], worker="w", duration_ms=1)
    recorded = SweepResultsRecorded(**ENVELOPE, payload=results)
    failed = JobFailed(
        **ENVELOPE,
        payload=JobFailedPayload(attempt=1, error_type="E", error_message="chunk 2", retryable=True, duration_ms=1),
    )
    chunks.by_partition[0] = {*chunks.done_keys(job.encode(), recorded), *chunks.done_keys(other.encode(), failed)}
    chunks.opened([0])
    assert await chunks.chunk_verdict(0, chunk_record_key(job, 4)) == "finished"
    assert await chunks.chunk_verdict(0, chunk_record_key(job, 5)) == "run"
    assert await chunks.chunk_verdict(0, chunk_record_key(other, 7)) == "finished", "its sweep failed"
    assert chunks.job_of(chunk_record_key(job, 12)) == job.encode()
