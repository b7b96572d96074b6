"""Synthetic job histories, for replays and benchmarks at scale: a realistic mix of job types and lifecycles.

Histories are deterministic for a seed, so two runs append the same facts (with fresh ids unless the seed is given).
Each job's events are appended in order under the job id as key, like the real services do.
"""

import asyncio
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from kernel.kafka import make_producer
from kernel.settings import Settings
from schemas.codec import encode
from schemas.events import (
    AttemptError,
    Event,
    JobCancelled,
    JobCancelledPayload,
    JobCancelRequested,
    JobCancelRequestedPayload,
    JobCompleted,
    JobCompletedPayload,
    JobDeadLettered,
    JobDeadLetteredPayload,
    JobFailed,
    JobFailedPayload,
    JobProgressed,
    JobProgressedPayload,
    JobRequested,
    JobRequestedPayload,
    JobRetryScheduled,
    JobRetryScheduledPayload,
    JobStarted,
    JobStartedPayload,
    NotificationSent,
    NotificationSentPayload,
    SweepPlanned,
    SweepPlannedPayload,
    SweepResultsRecorded,
    SweepResultsRecordedPayload,
    follow_up,
)
from schemas.sweeps import SweepResultRow

JOB_TYPES = ("report.generate", "data.export", "email.digest", "http.callback", "image.resize")
TICKERS = ("AAPL", "MSFT", "GOOG", "AMZN")


class _Job:
    """One job's history under construction: each step follows the previous one by a little while."""

    def __init__(self, rng: random.Random, at: datetime, tenant: str, job_type: str, parameters: dict[str, object]):
        self.rng = rng
        self.at = at
        self.events: list[Event] = []
        self.request = JobRequested(
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            job_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            tenant_id=tenant,
            correlation_id=f"synthetic-{rng.getrandbits(48):012x}",
            producer="receiver",
            occurred_at=at,
            payload=JobRequestedPayload(job_type=job_type, parameters=parameters),
        )
        self.events.append(self.request)

    def then(self, event_type: type[Event], payload: object) -> None:
        self.at += timedelta(milliseconds=self.rng.randint(5, 2_000))
        event = follow_up(
            self.events[-1],
            event_type,
            producer="processor",
            payload=payload,  # type: ignore[arg-type]
            event_id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
        )
        self.events.append(event.model_copy(update={"occurred_at": self.at}))


def _error(job: _Job, attempt: int) -> tuple[str, str]:
    return job.rng.choice(
        [("TimeoutError", f"attempt {attempt} timed out"), ("HTTPStatusError", "upstream answered 502 Bad Gateway")]
    )


def _completed(job: _Job, attempt: int = 1) -> None:
    job.then(
        JobCompleted,
        JobCompletedPayload(
            attempt=attempt, result={"rows": job.rng.randint(1, 10_000)}, duration_ms=job.rng.uniform(5, 5_000)
        ),
    )
    if job.rng.random() < 0.2:
        job.then(
            NotificationSent,
            NotificationSentPayload(
                channel="slack", target="https://hooks.slack.com/…", outcome="JobCompleted", attempts=1
            ),
        )


def _run(job: _Job, attempt: int) -> None:
    job.then(JobStarted, JobStartedPayload(attempt=attempt, host=f"worker-{job.rng.randint(1, 4)}", process_id=attempt))


def _retry(job: _Job, attempt: int) -> AttemptError:
    error_type, message = _error(job, attempt)
    delay = 2.0 * 2 ** (attempt - 1)
    job.then(
        JobRetryScheduled,
        JobRetryScheduledPayload(
            attempt=attempt,
            next_attempt=attempt + 1,
            delay_seconds=delay,
            due_at=job.at + timedelta(seconds=delay),
            error_type=error_type,
            error_message=message,
        ),
    )
    return AttemptError(attempt=attempt, error_type=error_type, error_message=message, failed_at=job.at)


def _generic(job: _Job) -> None:
    fate = job.rng.random()
    if fate < 0.04:  # cancelled before a worker got to it
        job.then(JobCancelRequested, JobCancelRequestedPayload(reason="not needed", requested_by="webhook"))
        job.then(JobCancelled, JobCancelledPayload(attempt=1, reason="not needed"))
        return
    _run(job, 1)
    if fate < 0.70:
        job.then(JobProgressed, JobProgressedPayload(attempt=1, progress=0.5, message="halfway"))
        _completed(job)
    elif fate < 0.82:
        _retry(job, 1)
        _run(job, 2)
        _completed(job, 2)
    elif fate < 0.90:
        error_type, message = _error(job, 1)
        job.then(
            JobFailed,
            JobFailedPayload(
                attempt=1,
                error_type=error_type,
                error_message=message,
                error_detail="Traceback (most recent call last):\n  …",
                retryable=False,
                duration_ms=job.rng.uniform(5, 500),
            ),
        )
    elif fate < 0.95:
        history = [_retry(job, 1)]
        _run(job, 2)
        history.append(_retry(job, 2))
        _run(job, 3)
        error_type, message = _error(job, 3)
        history.append(AttemptError(attempt=3, error_type=error_type, error_message=message, failed_at=job.at))
        job.then(
            JobDeadLettered,
            JobDeadLetteredPayload(
                attempts=3, reason="attempts exhausted", history=history, dead_letter_topic="zixly.dead-letters"
            ),
        )
    else:  # still running when the history was taken
        job.then(JobProgressed, JobProgressedPayload(attempt=1, progress=0.25, message="a quarter"))


def _sweep(job: _Job) -> None:
    _run(job, 1)
    chunks = job.rng.randint(2, 4)
    job.then(
        SweepPlanned,
        SweepPlannedPayload(
            attempt=1, chunk_count=chunks, backtest_count=chunks * 5, data=[], parameters={"split": None}
        ),
    )
    for chunk in range(chunks):
        rows = [
            SweepResultRow(
                ticker=job.rng.choice(TICKERS),
                strategy_type="sma_crossover",
                parameters={"fast": 2 + i, "slow": 20 + chunk * 5 + i},
                score=job.rng.gauss(0.5, 0.4),
                metrics={
                    "total_return": job.rng.gauss(0.1, 0.2),
                    "sharpe": job.rng.gauss(0.5, 0.4),
                    "max_drawdown": -job.rng.random() * 0.4,
                    "trades": job.rng.randint(1, 60),
                    "exposure": job.rng.random(),
                },
            )
            for i in range(5)
        ]
        job.then(
            SweepResultsRecorded,
            SweepResultsRecordedPayload(
                chunk_index=chunk, chunk_count=chunks, rows=rows, worker="worker-1:1", duration_ms=40.0
            ),
        )
        job.then(
            JobProgressed,
            JobProgressedPayload(attempt=1, progress=(chunk + 1) / chunks, message=f"{chunk + 1}/{chunks} chunks"),
        )
    _completed(job)


def histories(count: int, seed: int | None = None, tenants: int = 10) -> Iterator[Event]:
    """About ``count`` events (whole histories, so a few more), interleaved across jobs as they would be live."""
    rng = random.Random(seed)
    at = datetime(2026, 1, 1, tzinfo=UTC) if seed is not None else datetime.now(UTC) - timedelta(days=1)
    in_flight: list[list[Event]] = []
    produced = 0
    while produced < count or in_flight:
        if produced < count and (len(in_flight) < 50 or rng.random() < 0.3):
            at += timedelta(milliseconds=rng.randint(1, 50))
            tenant = f"tenant-{rng.randrange(tenants):02d}"
            if rng.random() < 0.05:
                job = _Job(rng, at, tenant, "trading.sweep", {"tickers": list(TICKERS[:2]), "strategies": []})
                _sweep(job)
            else:
                job = _Job(rng, at, tenant, rng.choice(JOB_TYPES), {"n": rng.randint(1, 1000)})
                _generic(job)
            produced += len(job.events)
            in_flight.append(job.events)
        index = rng.randrange(len(in_flight))
        history = in_flight[index]
        yield history.pop(0)
        if not history:
            in_flight[index] = in_flight[-1]
            in_flight.pop()


async def append_synthetic(
    settings: Settings, count: int, seed: int | None = None, progress: Callable[[int], None] | None = None
) -> int:
    """Appends about ``count`` synthetic events to the job log; returns how many."""
    producer = make_producer(settings, linger_ms=20, max_batch_size=1024 * 1024, request_timeout_ms=60_000)
    await producer.start()
    appended = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for event in histories(count, seed):
            key, value, headers = encode(event)
            pending.append(await producer.send(settings.job_events_topic, value=value, key=key, headers=headers))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                appended += len(pending)
                pending.clear()
                if progress:
                    progress(appended)
        await asyncio.gather(*pending)
        appended += len(pending)
        if progress:
            progress(appended)
    finally:
        await producer.stop()
    return appended
