import uuid

from read_model.job_state import already_applied, apply_event
from schemas.events import (
    JobCompleted,
    JobCompletedPayload,
    JobFailed,
    JobFailedPayload,
    JobProgressed,
    JobProgressedPayload,
    JobRequested,
    JobRequestedPayload,
    JobStarted,
    JobStartedPayload,
    follow_up,
)

REQUEST = JobRequested(
    tenant_id="acme",
    job_id=uuid.uuid4(),
    correlation_id="c",
    producer="test",
    payload=JobRequestedPayload(job_type="sleep", parameters={"seconds": 1}, metadata={"team": "x"}),
)
STARTED = follow_up(REQUEST, JobStarted, producer="w", payload=JobStartedPayload(attempt=1, host="w1", process_id=7))
HALFWAY = follow_up(STARTED, JobProgressed, producer="w", payload=JobProgressedPayload(attempt=1, progress=0.5))
DONE = follow_up(
    STARTED, JobCompleted, producer="w", payload=JobCompletedPayload(attempt=1, result={"ok": 1}, duration_ms=12.5)
)
FAILED = follow_up(
    STARTED,
    JobFailed,
    producer="w",
    payload=JobFailedPayload(attempt=1, error_type="Boom", error_message="it broke", retryable=False, duration_ms=3),
)


def test_a_requested_job_is_queued_with_its_parameters() -> None:
    row = apply_event(None, REQUEST, 0, 10)
    assert (row.status, row.job_type, row.parameters, row.metadata) == (
        "QUEUED",
        "sleep",
        {"seconds": 1},
        {"team": "x"},
    )
    assert (row.event_count, row.log_partition, row.log_offset) == (1, 0, 10)
    assert row.created_at == REQUEST.occurred_at


def test_a_job_runs_progresses_and_completes() -> None:
    row = apply_event(None, REQUEST, 0, 1)
    row = apply_event(row, STARTED, 0, 2)
    assert (row.status, row.attempts, row.started_at) == ("RUNNING", 1, STARTED.occurred_at)
    row = apply_event(row, HALFWAY, 0, 3)
    assert row.progress == 0.5
    row = apply_event(row, DONE, 0, 4)
    assert (row.status, row.result, row.progress, row.completed_at) == ("COMPLETED", {"ok": 1}, 1.0, DONE.occurred_at)
    assert row.metrics == {"duration_ms": 12.5, "worker": {"host": "w1", "process_id": 7}}
    assert row.event_count == 4
    assert row.last_event_id == DONE.event_id


def test_a_failed_job_keeps_its_error() -> None:
    row = apply_event(apply_event(apply_event(None, REQUEST, 0, 1), STARTED, 0, 2), FAILED, 0, 3)
    assert (row.status, row.error_type, row.error_message) == ("FAILED", "Boom", "it broke")


def test_a_finished_job_is_not_reopened_by_a_duplicate_attempt() -> None:
    done = apply_event(apply_event(apply_event(None, REQUEST, 0, 1), STARTED, 0, 2), DONE, 0, 3)
    again = apply_event(done, STARTED, 0, 4)
    again = apply_event(again, FAILED, 0, 5)
    assert again.status == "COMPLETED"
    assert again.result == {"ok": 1}
    assert again.event_count == 5


def test_a_redelivered_request_does_not_reset_a_running_job() -> None:
    running = apply_event(apply_event(None, REQUEST, 0, 1), STARTED, 0, 2)
    assert apply_event(running, REQUEST, 0, 3).status == "RUNNING"


def test_an_event_at_or_below_the_rows_last_offset_counts_as_applied() -> None:
    row = apply_event(None, REQUEST, 2, 10)
    assert already_applied(row, 2, 10)
    assert already_applied(row, 2, 9)
    assert not already_applied(row, 2, 11)
    assert not already_applied(None, 2, 0)


def test_applying_an_event_leaves_the_row_it_was_given_as_it_was() -> None:
    # The fold writes the new position into the row it makes, never into the caller's: the live projector keeps the
    # row it read, and a terminal job's row comes back from its transition unchanged.
    queued = apply_event(None, REQUEST, 0, 1)
    running = apply_event(queued, STARTED, 0, 2)
    done = apply_event(running, DONE, 0, 3)
    late = apply_event(done, HALFWAY, 0, 4)  # after the outcome: no transition, a new position
    assert (queued.status, queued.log_offset, queued.event_count) == ("QUEUED", 1, 1)
    assert (running.status, running.log_offset, running.event_count) == ("RUNNING", 2, 2)
    assert (done.status, done.log_offset, done.progress) == ("COMPLETED", 3, 1.0)
    assert (late.status, late.log_offset, late.event_count, late.progress) == ("COMPLETED", 4, 4, 1.0)
    assert late is not done


def test_a_terminal_row_is_terminal_whether_its_status_is_the_enum_or_its_text() -> None:
    done = apply_event(apply_event(None, REQUEST, 0, 1), DONE, 0, 2)
    assert done.is_terminal
    assert apply_event(done, STARTED, 0, 3).status == "COMPLETED"
    from_text = type(done)(**{**done.__dict__, "status": "FAILED"})
    assert from_text.is_terminal
    assert not apply_event(None, REQUEST, 0, 1).is_terminal
