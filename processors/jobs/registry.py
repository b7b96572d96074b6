"""Job types the workers can run: parameters model (from the contracts) and handler."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from processors.jobs.context import Deferred, JobContext
from processors.jobs.http_request import run_http_request
from processors.jobs.noop import run_noop
from processors.jobs.retry_policy import RetryPolicy
from processors.jobs.sleep import run_sleep
from schemas.job_parameters import JobParameters
from schemas.jobs import JOB_PARAMETERS

Handler = Callable[[Any, JobContext], Awaitable[dict[str, Any] | Deferred]]


@dataclass(frozen=True)
class JobType:
    name: str
    parameters: type[JobParameters]
    handler: Handler
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class JobRegistry:
    def __init__(self, job_types: list[JobType]) -> None:
        self._types = {job_type.name: job_type for job_type in job_types}

    def get(self, name: str) -> JobType | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)


def default_registry(extra: dict[str, Handler] | None = None, retry: RetryPolicy | None = None) -> JobRegistry:
    """The built-in job types, plus handlers that need the worker's clients (the sweep planner).

    ``retry`` is the policy of every type; ``noop`` never fails and is not retried.
    """
    handlers: dict[str, Handler] = {
        "noop": run_noop,
        "sleep": run_sleep,
        "http.request": run_http_request,
        **(extra or {}),
    }
    policy = retry or RetryPolicy()
    return JobRegistry(
        [
            JobType(name, JOB_PARAMETERS[name], handler, policy if name != "noop" else RetryPolicy(max_attempts=1))
            for name, handler in handlers.items()
        ]
    )
