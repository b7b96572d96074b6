"""Checking an external service's callback against the job it names, and turning it into events.

Every refusal says what is wrong and appends nothing: an unknown job (404), a wrong token (401), a job that has
already ended or was never dispatched, or a reference that is not the one the service gave (409), results that name
tickers or strategies the sweep does not have (422).
"""

import asyncio
import time
from typing import Any

from identity.callback_tokens import token_valid
from producers.errors import ApiError
from producers.job_status import JobReader
from producers.submission import PRODUCER
from schemas.events import SweepCallbackReceived, SweepCallbackReceivedPayload, derived_event_id
from schemas.job_status import TERMINAL_STATUSES
from schemas.sweeps import SweepCallbackWebhook, SweepResultRow
from schemas.webhooks import ErrorDetail, JobStatusView


async def checked_job(
    jobs: JobReader, callback: SweepCallbackWebhook, tenant_id: str, secret: str, wait_seconds: float
) -> JobStatusView:
    job = await jobs.get(callback.job_id, tenant_id)
    if job is None:
        raise ApiError(
            404,
            "unknown_job",
            f"no job {callback.job_id} for tenant {tenant_id!r}",
            [ErrorDetail(loc=["job_id"], msg="unknown job", type="unknown_job")],
        )
    if not token_valid(secret, tenant_id, callback.job_id, callback.callback_token):
        detail = ErrorDetail(loc=["callback_token"], msg="not this job's token", type="invalid_token")
        raise ApiError(401, "invalid_callback_token", "the callback token was not issued for this job", [detail])
    # The dispatch is in the log before the service can call back, but the read model may be a moment behind.
    deadline = time.monotonic() + wait_seconds
    while "external" not in job.metrics and job.status not in TERMINAL_STATUSES and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        job = await jobs.get(callback.job_id, tenant_id) or job
    if job.status in TERMINAL_STATUSES:
        raise ApiError(
            409, "job_already_finished", f"job {job.job_id} is already {job.status}; this callback changes nothing"
        )
    external: dict[str, Any] | None = job.metrics.get("external")
    if external is None:
        raise ApiError(
            409,
            "not_dispatched",
            f"job {job.job_id} was not dispatched to an external service",
            headers={"Retry-After": "5"},
        )
    if external["reference"] != callback.external_reference:
        raise ApiError(
            409,
            "reference_mismatch",
            f"job {job.job_id} was dispatched as {external['reference']!r}, not {callback.external_reference!r}",
            [
                ErrorDetail(
                    loc=["external_reference"], msg="not the reference given at dispatch", type="reference_mismatch"
                )
            ],
        )
    _check_rows(callback.results, job.parameters)
    return job


def _check_rows(rows: list[SweepResultRow], parameters: dict[str, Any]) -> None:
    tickers = set(parameters.get("tickers", []))
    strategies = {grid["type"] for grid in parameters.get("strategies", [])}
    details = []
    for index, row in enumerate(rows):
        if row.ticker not in tickers:
            details.append(
                ErrorDetail(
                    loc=["results", index, "ticker"], msg=f"{row.ticker!r} is not in the sweep", type="not_in_sweep"
                )
            )
        if row.strategy_type.value not in strategies:
            message = f"{row.strategy_type.value!r} is not in the sweep"
            details.append(ErrorDetail(loc=["results", index, "strategy_type"], msg=message, type="not_in_sweep"))
        if len(details) >= 20:
            break
    if details:
        raise ApiError(
            422, "results_not_in_sweep", "results name tickers or strategies the sweep does not have", details
        )


def callback_events(callback: SweepCallbackWebhook, job: JobStatusView, part_size: int) -> list[SweepCallbackReceived]:
    """The callback as events of at most ``part_size`` rows, with ids that a redelivered callback repeats."""
    rows = callback.results
    parts = [rows[i : i + part_size] for i in range(0, len(rows), part_size)] or [[]]
    return [
        SweepCallbackReceived(
            event_id=derived_event_id(
                job.job_id, f"sweep-callback:{callback.external_reference}:{callback.status}:{i}"
            ),
            tenant_id=job.tenant_id,
            job_id=job.job_id,
            correlation_id=job.correlation_id,
            producer=PRODUCER,
            payload=SweepCallbackReceivedPayload(
                external_reference=callback.external_reference,
                status=callback.status,
                part_index=i,
                part_count=len(parts),
                rows=part,
                error=callback.error,
            ),
        )
        for i, part in enumerate(parts)
    ]
