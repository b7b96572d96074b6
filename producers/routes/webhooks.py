"""``POST /webhook/...``: integrators submit jobs."""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from identity.callback_tokens import token_valid
from identity.tenants import TenantLimits
from kernel.logging import bound_contextvars, get_logger
from producers.acceptance import append
from producers.callers import bearer, unauthorized
from producers.deps import IdempotencyKey, Services, Tenant
from producers.errors import ApiError
from producers.limits import tenant_rate
from producers.openapi import request_body
from producers.request_body import read_json_body
from producers.submission import job_requested, parse_generic_job, parse_sweep_callback, parse_trading_sweep
from producers.sweep_callback import callback_events, checked_job
from producers.sweep_checks import check_sweep
from schemas.sweeps import SWEEP_JOB_TYPE, SweepCallbackWebhook, TradingSweepParameters, TradingSweepWebhook
from schemas.webhooks import ErrorDetail, ErrorResponse, GenericJobWebhook, JobAccepted

router = APIRouter(prefix="/webhook", tags=["webhooks"])
log = get_logger(__name__)

_errors: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        413: "The body is over the size limit.",
        401: "The tenant signs its webhooks and this one's signature is missing, wrong or stale (or it is unknown).",
        429: "A limit of the tenant: its rate (`Retry-After`, `RateLimit-*`) or its jobs in flight.",
        409: "The idempotency key (the signed webhook-id, else Idempotency-Key) was used for another request, or "
        "the same request is being accepted right now.",
        415: "The body is not JSON.",
        422: "The payload or its parameters are not valid; `details` names each field.",
        503: "The log did not acknowledge the event: nothing was accepted, retry later.",
    }.items()
}


@router.post(
    "/generic-job",
    status_code=202,
    response_model=JobAccepted,
    responses=_errors,
    summary="Submit a job of a registered type",
    openapi_extra=request_body(GenericJobWebhook),
)
async def submit_generic_job(
    request: Request, services: Services, tenant_id: Tenant, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Answers 202 only once the broker has acknowledged the JobRequested event with acks=all."""
    signed = await _signed_body(request, services, tenant_id, idempotency_key)
    webhook = parse_generic_job(signed.body, services.outbound, tenant_id, services.settings.development)
    if webhook.job_type == SWEEP_JOB_TYPE:
        await _check_sweep(services, TradingSweepParameters.model_validate(webhook.parameters), signed.limits)
    return await _accept(services, webhook, tenant_id, signed)


@router.post(
    "/trading-sweep",
    status_code=202,
    response_model=JobAccepted,
    responses=_errors,
    summary="Sweep strategies' parameters over tickers and rank the results",
    openapi_extra=request_body(TradingSweepWebhook),
)
async def submit_trading_sweep(
    request: Request, services: Services, tenant_id: Tenant, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Checks the grid's size and the market data before accepting; answers 202 once the job is in the log."""
    signed = await _signed_body(request, services, tenant_id, idempotency_key)
    sweep = parse_trading_sweep(signed.body)
    await _check_sweep(services, sweep, signed.limits)
    webhook = GenericJobWebhook(
        job_type=SWEEP_JOB_TYPE,
        parameters=sweep.job_parameters(),
        correlation_id=sweep.correlation_id,
        metadata=sweep.metadata,
    )
    return await _accept(services, webhook, tenant_id, signed)


async def _check_sweep(services: Services, sweep: TradingSweepParameters, limits: TenantLimits) -> None:
    await check_sweep(sweep, services.market_data, limits.max_sweep_backtests or services.settings.sweep_max_backtests)


@dataclass(frozen=True)
class SignedBody:
    body: bytes
    key: str | None
    limits: TenantLimits
    rate_headers: dict[str, str]


async def _signed_body(request: Request, services: Services, tenant_id: str, idempotency_key: str | None) -> SignedBody:
    """The body once its signature checks out and the tenant's rate allows it, and what makes it idempotent: the
    signed webhook id, else (for an unsigned webhook) the Idempotency-Key header. A header cannot change a signed
    request's key, or a captured signed body could be replayed with fresh keys into new jobs."""
    settings = services.settings
    body = await read_json_body(request, settings.max_body_bytes)
    webhook_id = await services.authenticator.authenticate(tenant_id, request.headers, body)
    limits = await services.authenticator.limits_of(tenant_id)
    headers = services.rates.take(f"tenant:{tenant_id}", tenant_rate(limits, settings), f"tenant {tenant_id!r}")
    return SignedBody(body, webhook_id or idempotency_key, limits, headers)


async def _accept(services: Services, webhook: GenericJobWebhook, tenant_id: str, signed: SignedBody) -> JSONResponse:
    settings = services.settings
    idempotency_key = signed.key
    event = job_requested(webhook, tenant_id, idempotency_key)
    max_in_flight = signed.limits.max_in_flight or settings.tenant_max_in_flight

    async def admit() -> None:
        await services.quota.admit(tenant_id, max_in_flight)

    with bound_contextvars(job_id=str(event.job_id), tenant_id=event.tenant_id, correlation_id=event.correlation_id):
        accepted_once = await services.acceptance.accept(event, idempotency_key, admit)
        if accepted_once.replayed:
            log.info("redelivered webhook answered from its receipt", idempotency_key=idempotency_key)
        else:
            log.info(
                "job accepted",
                job_type=event.payload.job_type,
                partition=accepted_once.appended.partition,
                offset=accepted_once.appended.offset,
            )
    appended = accepted_once.appended
    accepted = JobAccepted(
        job_id=event.job_id,
        status_url=f"{settings.receiver_base_url}/webhook/jobs/{event.job_id}",
        event_id=event.event_id,
        correlation_id=event.correlation_id,
        partition=appended.partition,
        offset=appended.offset,
    )
    headers = signed.rate_headers | ({"Idempotent-Replayed": "true"} if accepted_once.replayed else {})
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers=headers)


class CallbackRecorded(BaseModel):
    job_id: uuid.UUID
    status: str = "RECORDED"
    events: int


@router.post(
    "/sweep-callback",
    status_code=202,
    response_model=CallbackRecorded,
    responses=_errors
    | {
        401: {"model": ErrorResponse, "description": "The callback token is not this job's."},
        404: {"model": ErrorResponse, "description": "No such job for this tenant."},
        409: {
            "model": ErrorResponse,
            "description": "The job has ended, was not dispatched, or has another reference.",
        },
    },
    summary="An external backtest service reports a dispatched sweep's outcome",
    openapi_extra=request_body(SweepCallbackWebhook),
)
async def receive_sweep_callback(
    request: Request,
    services: Services,
    tenant_id: Tenant,
    job_id: Annotated[uuid.UUID, Query(description="The job, as in the callback_url given at dispatch.")],
    authorization: Annotated[
        str | None,
        Header(description="`Bearer <callback_token>`: the token given at dispatch, checked before the body."),
    ] = None,
) -> JSONResponse:
    """Records the callback as events once they are in the log; the job completes (or fails) from there.

    The token is checked before the body is read (which may be 64 MiB of results), and the body is parsed off the
    event loop."""
    settings = services.settings
    secret = settings.callback_secret.get_secret_value()
    token = bearer(request.headers)
    if token is None or not token_valid(secret, tenant_id, job_id, token):
        message = "the callback token (Authorization: Bearer) was not issued for this job"
        raise unauthorized("invalid_callback_token", message, "Authorization")
    body = await read_json_body(request, settings.callback_max_body_bytes)
    callback = await run_in_threadpool(parse_sweep_callback, body)
    if callback.job_id != job_id or callback.callback_token != token:
        detail = ErrorDetail(loc=["body", "job_id"], msg=f"must be {job_id}", type="callback_mismatch")
        raise ApiError(422, "callback_mismatch", "the body names another job or token than the request", [detail])
    job = await checked_job(services.jobs, callback, tenant_id, secret, settings.callback_wait_seconds)
    events = callback_events(callback, job, settings.sweep_chunk_size)
    with bound_contextvars(job_id=str(job.job_id), tenant_id=tenant_id, correlation_id=job.correlation_id):
        for event in events:
            await append(services.publisher, event)
        log.info("sweep callback recorded", status=callback.status, rows=len(callback.results), parts=len(events))
    recorded = CallbackRecorded(job_id=job.job_id, events=len(events))
    return JSONResponse(recorded.model_dump(mode="json"), status_code=202)
