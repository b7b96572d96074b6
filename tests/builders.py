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
    SweepResultsRecorded,
    SweepResultsRecordedPayload,
    derived_event_id,
    follow_up,
)
from schemas.strategies import StrategyType
from schemas.sweeps import SweepResultRow


def job_lifecycle(tenant: str = "acme") -> list[Event]:
    """JobRequested, JobStarted and JobCompleted of one new noop job."""
    request = JobRequested(
        tenant_id=tenant,
        job_id=uuid.uuid4(),
        correlation_id="c",
        producer="test",
        payload=JobRequestedPayload(job_type="noop", parameters={}),
    )
    started = follow_up(request, JobStarted, producer="w", payload=JobStartedPayload(attempt=1, host="w"))
    done = follow_up(
        started, JobCompleted, producer="w", payload=JobCompletedPayload(attempt=1, result={"n": 1}, duration_ms=1)
    )
    return [request, started, done]


def sweep_results(cause: Event, chunk_index: int, scores: list[float], ticker: str = "AAPL") -> SweepResultsRecorded:
    """One chunk's results of a sweep, with the same event id whenever it is produced again."""
    rows = [
        SweepResultRow(
            ticker=ticker,
            strategy_type=StrategyType.MOMENTUM,
            parameters={"window": chunk_index * 100 + i, "threshold": 0.0},
            score=score,
            metrics={"sharpe": score, "total_return": 0.1, "trades": 3, "exposure": 0.5},
        )
        for i, score in enumerate(scores)
    ]
    return follow_up(
        cause,
        SweepResultsRecorded,
        producer="w",
        event_id=derived_event_id(cause.job_id, f"results:{chunk_index}"),
        payload=SweepResultsRecordedPayload(
            chunk_index=chunk_index, chunk_count=2, rows=rows, worker="w", duration_ms=1.0
        ),
    )
