"""Running one attempt of a requested job: JobStarted, the handler, then JobCompleted, JobFailed, a retry, or the
dead-letter topic.

- A retryable failure with attempts left schedules the next attempt on the retry topic (so it never holds up the
  job's partition) and appends JobRetryScheduled.
- A failure no retry can fix is JobFailed.
- The last attempt's failure is JobDeadLettered, with every attempt's error, and the request goes to the dead-letter
  topic.

Plain code over ports (publisher, retry scheduler, dead letters), tested without a broker; the agents are thin loops
around it.
"""

import asyncio
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from kernel.dead_letters import Origin
from kernel.logging import bound_contextvars, get_logger
from kernel.publisher import EventPublisher
from kernel.redaction import redact_text
from processors.cancellations import CancelRegistry
from processors.emit import emit
from processors.jobs.context import Cancelled, Deferred, JobContext, JobError
from processors.jobs.registry import JobRegistry
from processors.jobs.retry_policy import RetryPolicy
from processors.metrics import JOB_DURATION, JOBS_FINISHED, JOBS_RUNNING
from schemas.codec import encode
from schemas.events import (
    AttemptError,
    E,
    JobCancelled,
    JobCancelledPayload,
    JobCompleted,
    JobCompletedPayload,
    JobDeadLettered,
    JobDeadLetteredPayload,
    JobFailed,
    JobFailedPayload,
    JobProgressed,
    JobProgressedPayload,
    JobRequested,
    JobRetryScheduled,
    JobRetryScheduledPayload,
    JobStarted,
    JobStartedPayload,
)
from schemas.retries import RetryRequest
from schemas.upcasting import split_worker

log = get_logger(__name__)

ContextFactory = Callable[..., JobContext]
Outcome = JobCompleted | JobFailed | JobRetryScheduled | JobDeadLettered | JobCancelled


class RetryScheduler(Protocol):
    async def schedule(self, retry: RetryRequest) -> None: ...


class DeadLetters(Protocol):
    topic: str

    async def send(self, origin: Origin, error_type: str, error: str, stage: str) -> None: ...


@dataclass(frozen=True)
class _Failure:
    error_type: str
    message: str
    detail: str | None
    retryable: bool

    def __post_init__(self) -> None:
        # What a failure says goes into events, the dead-letter topic and pages: no credential it happens to quote.
        object.__setattr__(self, "message", redact_text(self.message))
        object.__setattr__(self, "detail", None if self.detail is None else redact_text(self.detail))


class JobRunner:
    def __init__(
        self,
        registry: JobRegistry,
        publisher: EventPublisher,
        worker_id: str,
        make_context: ContextFactory,
        retries: RetryScheduler,
        dead_letters: DeadLetters,
        cancellations: CancelRegistry | None = None,
    ) -> None:
        self._cancellations = cancellations or CancelRegistry()
        self._registry = registry
        self._publisher = publisher
        self._worker_id = worker_id
        self._host, self._process_id = split_worker(worker_id)
        self._make_context = make_context
        self._retries = retries
        self._dead_letters = dead_letters

    async def run(
        self, request: JobRequested, attempt: int = 1, history: Sequence[AttemptError] = ()
    ) -> Outcome | None:
        """Runs one attempt and returns its outcome event, which is in the log when this returns.

        None when the handler deferred the outcome (the job continues on other topics).
        """
        job_type = request.payload.job_type
        with bound_contextvars(
            job_id=str(request.job_id),
            tenant_id=request.tenant_id,
            correlation_id=request.correlation_id,
            attempt=attempt,
        ):
            started = await self._append(
                emit(
                    request,
                    JobStarted,
                    fact=f"started:{attempt}",
                    payload=JobStartedPayload(attempt=attempt, host=self._host, process_id=self._process_id),
                )
            )
            t0 = time.perf_counter()
            policy = self._policy(job_type)
            JOBS_RUNNING.labels(job_type).inc()
            try:
                if self._cancellations.requested(str(request.job_id)):
                    raise Cancelled(f"job {request.job_id} was cancelled before attempt {attempt}")
                result = await asyncio.wait_for(self._call_handler(request, started, attempt), policy.timeout_seconds)
            except Cancelled as exc:
                cancelled = emit(
                    started,
                    JobCancelled,
                    fact="cancelled",
                    payload=JobCancelledPayload(attempt=attempt, reason=str(exc)),
                )
                return await self._finish(cancelled, job_type, t0)
            except JobError as exc:
                failure = _Failure(type(exc).__name__, str(exc), exc.detail, exc.retryable)
            except TimeoutError:
                failure = _Failure(
                    "AttemptTimedOut", f"attempt {attempt} ran over {policy.timeout_seconds} s", None, True
                )
            except Exception as exc:  # a crash of a handler is a failed attempt, not a dead worker
                failure = _Failure(type(exc).__name__, str(exc) or repr(exc), traceback.format_exc(), True)
            else:
                if isinstance(result, Deferred):
                    log.info("job continues elsewhere", job_type=job_type, duration_ms=round(_ms_since(t0), 2))
                    return None
                outcome: Outcome = emit(
                    started,
                    JobCompleted,
                    payload=JobCompletedPayload(attempt=attempt, result=result, duration_ms=_ms_since(t0)),
                )
                return await self._finish(outcome, job_type, t0)
            finally:
                JOBS_RUNNING.labels(job_type).dec()
            outcome = await self._after_failure(request, started, attempt, list(history), failure, policy, t0)
            return await self._finish(outcome, job_type, t0)

    async def _after_failure(
        self,
        request: JobRequested,
        started: JobStarted,
        attempt: int,
        history: list[AttemptError],
        failure: _Failure,
        policy: RetryPolicy,
        t0: float,
    ) -> Outcome:
        now = datetime.now(UTC)
        history = [
            *history,
            AttemptError(
                attempt=attempt,
                error_type=failure.error_type[:200],
                error_message=failure.message[:10_000],
                failed_at=now,
            ),
        ]
        log.warning(
            "job attempt failed",
            error_type=failure.error_type,
            error=failure.message[:500],
            retryable=failure.retryable,
        )
        if policy.retries(failure.error_type, failure.retryable, attempt):
            delay = policy.delay(attempt)
            due = now + timedelta(seconds=delay)
            # The retry is durable before the event says so: a crash in between at worst runs an attempt twice.
            await self._retries.schedule(
                RetryRequest(request=request, attempt=attempt + 1, due_at=due, history=history)
            )
            return emit(
                started,
                JobRetryScheduled,
                fact=f"retry-scheduled:{attempt}",
                payload=JobRetryScheduledPayload(
                    attempt=attempt,
                    next_attempt=attempt + 1,
                    delay_seconds=round(delay, 3),
                    due_at=due,
                    error_type=failure.error_type[:200],
                    error_message=failure.message[:10_000],
                ),
            )
        if not failure.retryable or failure.error_type in policy.non_retryable:
            return emit(
                started,
                JobFailed,
                payload=JobFailedPayload(
                    attempt=attempt,
                    error_type=failure.error_type[:200],
                    error_message=failure.message[:10_000],
                    error_detail=failure.detail,
                    retryable=False,
                    duration_ms=_ms_since(t0),
                ),
            )
        key, value, headers = encode(request)
        origin = Origin(topic="", partition=-1, offset=-1, key=key, value=value, headers=headers)
        await self._dead_letters.send(origin, failure.error_type, failure.message, stage="attempts_exhausted")
        return emit(
            started,
            JobDeadLettered,
            fact="dead-lettered",
            payload=JobDeadLetteredPayload(
                attempts=attempt,
                reason=f"{attempt} attempt(s) failed; the last with {failure.error_type}",
                history=history,
                dead_letter_topic=self._dead_letters.topic,
            ),
        )

    async def _finish(self, outcome: Outcome, job_type: str, t0: float) -> Outcome:
        await self._append(outcome)
        kind = {
            JobCompleted: "completed",
            JobFailed: "failed",
            JobRetryScheduled: "retry_scheduled",
            JobDeadLettered: "dead_lettered",
            JobCancelled: "cancelled",
        }[type(outcome)]
        JOBS_FINISHED.labels(job_type, kind).inc()
        JOB_DURATION.labels(job_type).observe(time.perf_counter() - t0)
        log.info("job attempt finished", job_type=job_type, outcome=kind, duration_ms=round(_ms_since(t0), 2))
        return outcome

    def _policy(self, job_type: str) -> RetryPolicy:
        registered = self._registry.get(job_type)
        return registered.retry if registered is not None else RetryPolicy(max_attempts=1)

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
            await self._append(
                emit(
                    started,
                    JobProgressed,
                    payload=JobProgressedPayload(
                        attempt=attempt, progress=min(max(fraction, 0.0), 1.0), message=message
                    ),
                )
            )

        context = self._make_context(
            job_id=str(request.job_id),
            tenant_id=request.tenant_id,
            attempt=attempt,
            report_progress=report_progress,
            started=started,
            publish=self._publisher.publish,
            cancel_requested=lambda: self._cancellations.requested(str(request.job_id)),
        )
        return await job_type.handler(parameters, context)

    async def _append(self, event: E) -> E:
        await self._publisher.publish(event)
        return event


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
