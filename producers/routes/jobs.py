"""``GET /webhook/jobs/{id}`` and ``POST /webhook/jobs/{id}/cancel``: the integrator's view of one job."""

import asyncio
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from identity.audit import AuditEntry
from kernel.redaction import redact
from producers.acceptance import append
from producers.deps import Caller, Services, Tenant
from producers.errors import ApiError, validation_details
from producers.limits import tenant_rate, token_rate
from producers.openapi import request_body
from producers.request_body import read_optional_json_body
from schemas.events import JobCancelRequested, JobCancelRequestedPayload, derived_event_id
from schemas.job_status import TERMINAL_STATUSES
from schemas.webhooks import ErrorDetail, ErrorResponse, JobStatusView

router = APIRouter(prefix="/webhook", tags=["jobs"])


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatusView,
    responses={
        401: {"model": ErrorResponse, "description": "No API token, or one that is unknown, revoked or expired."},
        429: {"model": ErrorResponse, "description": "The token's read rate (`Retry-After`, `RateLimit-*`)."},
        404: {"model": ErrorResponse, "description": "No such job for this tenant (yet); another tenant's job too."},
        422: {"model": ErrorResponse, "description": "An offset without its partition, or a wait out of range."},
        412: {
            "model": ErrorResponse,
            "description": (
                "Read your own writes: the read model had not applied the offset when the wait ended (`Retry-After`)."
            ),
        },
    },
    summary="The projected state of a job",
)
async def get_job(
    job_id: uuid.UUID,
    services: Services,
    caller: Caller,
    partition: Annotated[
        int | None, Query(ge=0, lt=2**31, description="With `offset`: the `partition` of a 202 answer.")
    ] = None,
    offset: Annotated[
        int | None,
        Query(
            ge=0,
            lt=2**63,
            description=(
                "Read your own writes: wait until the read model has applied this offset (the `offset` of a 202 "
                "answer, or of any later event of the job) before answering."
            ),
        ),
    ] = None,
    wait: Annotated[
        float,
        Query(gt=0, le=30, description=("Longest wait for `offset`, in seconds (the receiver may cap it lower).")),
    ] = 5.0,
) -> JSONResponse:
    """The job as the read model has it. With ``partition`` and ``offset`` the answer reflects at least that event;
    its ``Zixly-Projected-To`` header says how far the read model had got."""
    rate_headers = services.rates.take(caller.actor, token_rate(services.settings), caller.actor)
    if (partition is None) != (offset is None):
        raise ApiError(
            422,
            "invalid_query",
            "give both partition and offset (from the 202 answer), or neither",
            [
                ErrorDetail(
                    loc=["query", "offset" if offset is None else "partition"],
                    msg="required together with the other",
                    type="missing",
                )
            ],
        )
    projected = None
    if partition is not None and offset is not None:
        wait = min(wait, services.settings.status_max_wait_seconds)
        projected = await _wait_until_projected(services, partition, offset, wait)
        if projected <= offset:
            # A precondition of the request (the read model has passed this offset) does not hold yet: 412, not a
            # server error, and worth asking again.
            raise ApiError(
                412,
                "projection_behind",
                f"the read model has applied partition {partition} up to offset "
                f"{projected - 1}, not yet {offset}, after {wait:g} s; ask again",
                headers={"Retry-After": "1"},
            )
    tenant_id = caller.tenant_id
    assert tenant_id is not None  # tokens and header callers always belong to a tenant
    job = await services.jobs.get(job_id, tenant_id)
    if job is None:
        # The same answer for another tenant's job as for none at all: a 403 would confirm that it exists.
        raise ApiError(
            404,
            "job_not_found",
            f"no job {job_id} for tenant {tenant_id!r}; a job just accepted appears within moments",
        )
    headers = rate_headers | ({} if projected is None else {"Zixly-Projected-To": f"{partition}:{projected}"})
    return JSONResponse(redact(job.model_dump(mode="json")), headers=headers)


async def _wait_until_projected(services: Services, partition: int, offset: int, wait: float) -> int:
    """Polls the checkpoint, quickly at first (the usual wait is a few milliseconds), then every half second: a far-off
    offset costs a few queries a second for the wait, not fifty."""
    deadline = time.monotonic() + wait
    pause = 0.01
    while (projected := await services.jobs.projected_to(partition)) <= offset and time.monotonic() < deadline:
        await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        pause = min(pause * 2, 0.5)
    return projected


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: uuid.UUID | None = Field(
        default=None,
        description="The job to cancel, required in a signed cancel: the signature then covers which job it stops.",
    )
    reason: str | None = Field(default=None, max_length=1000)


class CancelAccepted(BaseModel):
    job_id: uuid.UUID
    status: str = "CANCEL_REQUESTED"
    event_id: uuid.UUID


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    responses={
        401: {"model": ErrorResponse, "description": "The signature is missing, wrong or stale."},
        404: {"model": ErrorResponse, "description": "No such job for this tenant."},
        429: {"model": ErrorResponse, "description": "The tenant's request rate, shared with its webhooks."},
        409: {"model": ErrorResponse, "description": "The job has already finished; cancelling changes nothing."},
        422: {
            "model": ErrorResponse,
            "description": "The body is not a cancel request, or a signed one does not name this job in `job_id`.",
        },
        503: {"model": ErrorResponse, "description": "The log did not acknowledge the request; retry."},
    },
    summary="Ask for a job to stop",
    openapi_extra=request_body(CancelRequest),
)
async def cancel_job(job_id: uuid.UUID, request: Request, services: Services, tenant_id: Tenant) -> JSONResponse:
    """Records the request in the log (so it survives restarts); workers stop the job at their next checkpoint."""
    body = await read_optional_json_body(request, services.settings.max_body_bytes)
    webhook_id = await services.authenticator.authenticate(tenant_id, request.headers, body)
    limits = await services.authenticator.limits_of(tenant_id)
    services.rates.take(f"tenant:{tenant_id}", tenant_rate(limits, services.settings), f"tenant {tenant_id!r}")
    try:
        cancel = CancelRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_payload", "the cancel request is not valid", validation_details(exc.errors(include_url=False))
        ) from exc
    if webhook_id is not None and cancel.job_id != job_id:
        # The signature covers the body, not the path: a captured cancel must not stop another job.
        found = "names no job" if cancel.job_id is None else f"names job {cancel.job_id}"
        raise ApiError(
            422,
            "job_id_mismatch",
            f"a signed cancel names its job in the body; this one {found}, not {job_id}",
            [ErrorDetail(loc=["body", "job_id"], msg=f"must be {job_id}", type="job_id_mismatch")],
        )
    job = await _wait_for_job(services, job_id, tenant_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id} for tenant {tenant_id!r}")
    if job.status in TERMINAL_STATUSES:
        raise ApiError(409, "job_already_finished", f"job {job_id} is already {job.status}; cancelling changes nothing")
    event = JobCancelRequested(
        event_id=derived_event_id(job_id, "cancel-requested"),
        tenant_id=tenant_id,
        job_id=job_id,
        correlation_id=job.correlation_id,
        producer="receiver",
        payload=JobCancelRequestedPayload(reason=cancel.reason, requested_by=f"tenant {tenant_id}"),
    )
    await append(services.publisher, event)
    client = request.client.host if request.client else None
    await services.audit.record(
        AuditEntry(
            f"webhook:{tenant_id}" if webhook_id else f"header:{tenant_id}",
            "job.cancel",
            tenant_id,
            str(job_id),
            ip=client,
            detail={"webhook_id": webhook_id, "reason": cancel.reason},
        )
    )
    accepted = CancelAccepted(job_id=job_id, event_id=event.event_id)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


async def _wait_for_job(services: Services, job_id: uuid.UUID, tenant_id: str) -> JobStatusView | None:
    """A job accepted a moment ago may not be projected yet: wait briefly before calling it unknown."""
    deadline = time.monotonic() + services.settings.callback_wait_seconds
    while (job := await services.jobs.get(job_id, tenant_id)) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return job
