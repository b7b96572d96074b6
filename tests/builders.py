"""Events as tests need them: a whole job's lifecycle in a line."""

import uuid

from schemas.events import (
    Event,
    JobCompleted,
    JobCompletedPayload,
    JobRequested,
    JobRequestedPayload,
    JobStarted,
    JobStartedPayload,
    follow_up,
)


def job_lifecycle(tenant: str = "acme") -> list[Event]:
    """JobRequested, JobStarted and JobCompleted of one new noop job."""
    request = JobRequested(
        tenant_id=tenant, job_id=uuid.uuid4(), correlation_id="c", producer="test",
        payload=JobRequestedPayload(job_type="noop", parameters={}),
    )  # fmt: skip
    started = follow_up(request, JobStarted, producer="w", payload=JobStartedPayload(attempt=1, worker="w"))
    done = follow_up(started, JobCompleted, producer="w",
                     payload=JobCompletedPayload(attempt=1, result={"n": 1}, duration_ms=1))  # fmt: skip
    return [request, started, done]
