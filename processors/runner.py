"""Running one requested job: emit JobStarted, call the handler, emit JobCompleted or JobFailed.

Plain code over ports (a publisher, a registry), so it is tested without a broker; the Faust agent is a thin
loop around it.
"""

import time
import traceback
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from kernel.logging import bound_contextvars, get_logger
from kernel.publisher import EventPublisher
from processors.jobs.context import Deferred, JobContext, JobError
from processors.jobs.registry import JobRegistry
from processors.metrics import JOB_DURATION, JOBS_FINISHED, JOBS_RUNNING
from schemas.events import (
    E,
    JobCompleted,
    JobCompletedPayload,
    JobFailed,
    JobFailedPayload,
    JobProgressed,
    JobProgressedPayload,
    JobRequested,
    JobStarted,
    JobStartedPayload,
    follow_up,
)

PRODUCER = "processor"
log = get_logger(__name__)

ContextFactory = Callable[..., JobContext]


class JobRunner:
    def __init__(
        self,
        registry: JobRegistry,
        publisher: EventPublisher,
        worker_id: str,
        make_context: ContextFactory,
    ) -> None:
        self._registry = registry
        self._publisher = publisher
        self._worker_id = worker_id
        self._make_context = make_context

    async def run(self, request: JobRequested) -> JobCompleted | JobFailed | None:
        """Runs the job and returns its outcome event, which is in the log when this returns.

        None when the handler deferred the outcome (the job continues on other topics).
        """
        job_type = request.payload.job_type
        with bound_contextvars(
            job_id=str(request.job_id), tenant_id=request.tenant_id, correlation_id=request.correlation_id
        ):
            attempt = 1
            started = await self._emit(
                follow_up(request, JobStarted, producer=PRODUCER,
                          payload=JobStartedPayload(attempt=attempt, worker=self._worker_id))
            )  # fmt: skip
            t0 = time.perf_counter()
            JOBS_RUNNING.labels(job_type).inc()
            try:
                result = await self._call_handler(request, started, attempt)
            except JobError as exc:
                outcome: JobCompleted | JobFailed = self._failed(
                    started, attempt, t0, type(exc).__name__, str(exc), exc.detail, exc.retryable
                )
            except Exception as exc:  # an unexpected crash of a handler is a failed attempt, not a dead worker
                outcome = self._failed(
                    started,
                    attempt,
                    t0,
                    type(exc).__name__,
                    str(exc) or repr(exc),
                    traceback.format_exc(),
                    True,
                )
            else:
                if isinstance(result, Deferred):
                    log.info("job continues elsewhere", job_type=job_type, duration_ms=round(_ms_since(t0), 2))
                    return None
                outcome = follow_up(
                    started, JobCompleted, producer=PRODUCER,
                    payload=JobCompletedPayload(attempt=attempt, result=result, duration_ms=_ms_since(t0)),
                )  # fmt: skip
            finally:
                JOBS_RUNNING.labels(job_type).dec()
            await self._emit(outcome)
            kind = "completed" if isinstance(outcome, JobCompleted) else "failed"
            JOBS_FINISHED.labels(job_type, kind).inc()
            JOB_DURATION.labels(job_type).observe(time.perf_counter() - t0)
            log.info("job finished", job_type=job_type, outcome=kind, duration_ms=round(_ms_since(t0), 2))
            return outcome

    async def _call_handler(
        self, request: JobRequested, started: JobStarted, attempt: int
    ) -> dict[str, Any] | Deferred:
        job_type = self._registry.get(request.payload.job_type)
        if job_type is None:
            raise JobError(f"no handler for job type {request.payload.job_type!r} in this worker", retryable=False)
        try:
            parameters = job_type.parameters.model_validate(request.payload.parameters)
        except ValidationError as exc:
            raise JobError(f"invalid parameters: {exc.errors(include_url=False)}", retryable=False) from exc

        async def report_progress(fraction: float, message: str | None = None) -> None:
            await self._emit(
                follow_up(
                    started, JobProgressed, producer=PRODUCER,
                    payload=JobProgressedPayload(attempt=attempt, progress=min(max(fraction, 0.0), 1.0),
                                                 message=message),
                )
            )  # fmt: skip

        context = self._make_context(
            job_id=str(request.job_id), tenant_id=request.tenant_id, attempt=attempt,
            report_progress=report_progress, started=started, publish=self._publisher.publish,
        )  # fmt: skip
        return await job_type.handler(parameters, context)

    def _failed(
        self,
        started: JobStarted,
        attempt: int,
        t0: float,
        error_type: str,
        message: str,
        detail: str | None,
        retryable: bool,
    ) -> JobFailed:
        log.warning("job attempt failed", error_type=error_type, error=message[:500], retryable=retryable)
        return follow_up(
            started, JobFailed, producer=PRODUCER,
            payload=JobFailedPayload(
                attempt=attempt, error_type=error_type[:200], error_message=message[:10_000],
                error_detail=detail, retryable=retryable, duration_ms=_ms_since(t0),
            ),
        )  # fmt: skip

    async def _emit(self, event: E) -> E:
        await self._publisher.publish(event)
        return event


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
