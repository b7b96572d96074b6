"""What a job handler may do besides computing: report progress, read its tenant's secrets, stop when cancelled."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from schemas.events import Event


class Deferred:
    """What a handler returns when the job goes on elsewhere (a sweep's chunks): no outcome event yet."""

    def __repr__(self) -> str:
        return "DEFERRED"


DEFERRED = Deferred()


class Cancelled(Exception):
    """The job's cancellation was requested; raised by ``JobContext.checkpoint``."""


class JobError(Exception):
    """A failure the handler understands; ``retryable`` says whether trying again could help."""

    def __init__(self, message: str, *, retryable: bool, detail: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.detail = detail


class SecretSource(Protocol):
    async def value(self, tenant_id: str, name: str) -> str | None: ...


@dataclass
class JobContext:
    job_id: str
    tenant_id: str
    attempt: int
    report_progress: Callable[[float, str | None], Awaitable[None]]
    started: Event
    """The attempt's JobStarted event: the cause of whatever the handler appends."""
    publish: Callable[[Event], Awaitable[object]]
    http: httpx.AsyncClient
    """The tenants' client: every request goes through the outbound policy (kernel/outbound.py)."""
    cancel_requested: Callable[[], bool] = lambda: False
    development: bool = False
    """Whether test-only options (a sleep's crash, failures, hour-long waits) are honoured."""
    secrets: SecretSource | None = None
    """The tenants' named secrets (identity/tenant_secrets.py); None in a worker without a database."""

    async def secret(self, name: str) -> str:
        """The value of this job's tenant's secret ``name``; JobError (not worth retrying) when it has none."""
        if self.secrets is None:
            raise JobError(f"secret {name!r}: this worker reads no secrets", retryable=False)
        try:
            value = await self.secrets.value(self.tenant_id, name)
        except Exception as exc:  # the store is down: the next attempt may find it up
            raise JobError(f"secret {name!r} could not be read: {type(exc).__name__}", retryable=True) from exc
        if value is None:
            raise JobError(
                f"tenant {self.tenant_id!r} has no secret {name!r} (`zixly tenants secrets set`)", retryable=False
            )
        return value

    def checkpoint(self) -> None:
        """Where a handler may stop: raises Cancelled when the job's cancellation was requested."""
        if self.cancel_requested():
            raise Cancelled(f"job {self.job_id} was cancelled")
