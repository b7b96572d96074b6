"""``/api/pipelines/*``, ``/api/service-metrics`` and ``/api/jobs/subscribe``: the read-only API over the jobs."""

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from dashboard.authentication import Authenticator
from dashboard.authorization import requires, scope_of
from dashboard.job_queries import (
    RESULT_COLUMNS,
    SERVICE_METRICS,
    TIMELINE_EDGE,
    BadCursor,
    JobFilter,
    ResultsFilter,
    SortField,
    count_jobs,
    job_detail,
    job_events_page,
    job_row,
    list_jobs,
    stream_results,
    sweep_results,
)
from dashboard.live_updates import JobChangeListener, TooManySubscribers
from dashboard.route_support import NOT_FOUND, IsoTime, bad_query, engine_of
from dashboard.sessions import SESSION_COOKIE
from identity.audit import AuditEntry, record
from kernel.database import TenantScope, scoped
from schemas.access import Permission, Principal
from schemas.job_status import JobStatus

router = APIRouter(prefix="/api")
HEARTBEAT_SECONDS = 15.0
# Exact percentiles read every job of the window: a month is bounded work, a century is not.
MAX_METRICS_WINDOW = timedelta(days=31)
Reader = Annotated[Principal, requires(Permission.READ_JOBS)]


def _statuses(statuses: list[str] | None) -> list[str]:
    known = {status.value for status in JobStatus}
    unknown = [s for s in statuses or [] if s not in known]
    if unknown:
        raise bad_query("status", f"unknown status {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return list(statuses or [])


@router.get("/pipelines/jobs", summary="Jobs, filtered and sorted, one page at a time (cursor pagination)")
async def jobs(
    request: Request,
    caller: Reader,
    status: Annotated[list[str] | None, Query(description="any of these statuses (repeat the parameter)")] = None,
    job_type: Annotated[str | None, Query(max_length=64)] = None,
    tenant_id: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[IsoTime | None, Query(description="created at or after (ISO 8601)")] = None,
    created_to: Annotated[IsoTime | None, Query(description="created before (ISO 8601)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the parameters, the error or the id")] = None,
    sort: Annotated[SortField, Query()] = "created_at",
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")] = None,
    with_total: Annotated[bool, Query(description="also count every matching job (slower)")] = False,
) -> dict[str, Any]:
    if created_from and created_to and created_from >= created_to:
        raise bad_query("created_to", "must be after created_from")
    where = JobFilter(_statuses(status), job_type, tenant_id, created_from, created_to, q or None)
    try:
        rows, next_cursor = await list_jobs(
            engine_of(request), scope_of(caller), where, sort, order == "desc", limit, cursor
        )
    except BadCursor as exc:
        raise bad_query("cursor", str(exc)) from exc
    page: dict[str, Any] = {"items": rows, "next_cursor": next_cursor}
    if with_total:
        page["total"] = await count_jobs(engine_of(request), scope_of(caller), where)
    return page


@router.get(
    "/pipelines/jobs/{job_id}",
    summary="One job: its row, and its timeline (a long one shortened to both ends, with a count of each type)",
    responses=NOT_FOUND,
)
async def job(
    request: Request,
    caller: Reader,
    job_id: uuid.UUID,
    tenant_id: Annotated[str | None, Query(max_length=64)] = None,
    events_edge: Annotated[
        int,
        Query(
            ge=1,
            le=10_000,
            description="events shown from each end of a longer "
            "timeline; every event is in /pipelines/jobs/{id}/events",
        ),
    ] = TIMELINE_EDGE,
) -> dict[str, Any]:
    found = await job_detail(engine_of(request), scope_of(caller), job_id, tenant_id, events_edge)
    if found is None:
        raise HTTPException(404, detail=f"no job {job_id}")
    if not caller.may(Permission.READ_STACK_TRACES):
        found["error_detail"] = None
    return found


@router.get(
    "/pipelines/jobs/{job_id}/events", summary="A job's events in log order, one page at a time", responses=NOT_FOUND
)
async def job_events(
    request: Request,
    caller: Reader,
    job_id: uuid.UUID,
    after_offset: Annotated[int, Query(ge=-1, description="`next_after_offset` of the previous page")] = -1,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 500,
) -> dict[str, Any]:
    items = await job_events_page(engine_of(request), scope_of(caller), job_id, after_offset, limit)
    if items is None:
        raise HTTPException(404, detail=f"no job {job_id}")
    last = int(items[-1]["log_offset"]) if len(items) == limit else None
    return {"items": items, "next_after_offset": last}


@router.get(
    "/pipelines/results/{job_id}",
    summary="A sweep's results, best first, as JSON pages or one CSV file",
    response_model=None,
    responses=NOT_FOUND,
)
async def results(
    request: Request,
    caller: Reader,
    job_id: uuid.UUID,
    format: Annotated[Literal["json", "csv"], Query(description="csv: every result as a download")] = "json",
    ticker: Annotated[str | None, Query(max_length=32)] = None,
    strategy_type: Annotated[str | None, Query(max_length=32)] = None,
    fold: Annotated[int | None, Query(ge=0, le=1_000, description="one walk-forward fold's ranking")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any] | StreamingResponse:
    scope = scope_of(caller)
    found = await job_row(engine_of(request), scope, job_id)
    if found is None:
        raise HTTPException(404, detail=f"no job {job_id}")
    narrowed = ResultsFilter(ticker, strategy_type, fold)
    if format == "csv":
        await record(
            engine_of(request),
            AuditEntry(
                caller.actor,
                "results.download",
                found["tenant_id"],
                str(job_id),
                ip=request.client.host if request.client else None,
            ),
        )
        download = {"Content-Disposition": f'attachment; filename="{job_id}-results.csv"'}
        rows_as_csv = _csv(engine_of(request), scope, job_id, narrowed)
        return StreamingResponse(rows_as_csv, media_type="text/csv", headers=download)
    rows, total = await sweep_results(engine_of(request), scope, job_id, narrowed, limit, offset)
    return {"job_id": str(job_id), "total": total, "offset": offset, "items": rows}


async def _csv(
    engine: AsyncEngine, scope: TenantScope, job_id: uuid.UUID, narrowed: ResultsFilter
) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RESULT_COLUMNS)
    async for row in stream_results(engine, scope, job_id, narrowed):
        writer.writerow([json.dumps(row[c], sort_keys=True) if c == "parameters" else row[c] for c in RESULT_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/service-metrics", summary="Jobs by type created in a time range: counts, success, duration percentiles")
async def service_metrics(
    request: Request,
    caller: Reader,
    since: Annotated[IsoTime | None, Query(description="from (ISO 8601); default: an hour before `until`")] = None,
    until: Annotated[IsoTime | None, Query(description="to, excluded (ISO 8601); default: now")] = None,
) -> dict[str, Any]:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=1)
    if since >= until:
        raise bad_query("until", "must be after since")
    if until - since > MAX_METRICS_WINDOW:
        raise bad_query(
            "since",
            f"the window is at most {MAX_METRICS_WINDOW.days} days (the overview reads longer "
            "ones from its hourly rollups)",
        )
    async with scoped(engine_of(request), scope_of(caller)) as connection:
        result = await connection.execute(SERVICE_METRICS, {"since": since, "until": until})
        rows = [dict(row) for row in result.mappings()]
    for row in rows:
        finished = row["completed"] + row["failed"]
        row["success_rate"] = row["completed"] / finished if finished else None
    return {"since": since, "until": until, "job_types": rows}


@router.get(
    "/jobs/subscribe",
    summary="Job changes as they are projected (server-sent events)",
    response_class=StreamingResponse,
)
async def subscribe(
    request: Request,
    caller: Reader,
    tenant_id: Annotated[str | None, Query(max_length=64)] = None,
    job_id: Annotated[uuid.UUID | None, Query()] = None,
    status: Annotated[list[str] | None, Query()] = None,
) -> StreamingResponse:
    """Each event is one job's row after a projector commit: ``event: job``, ``data: {…}``."""
    statuses = set(_statuses(status))
    listener: JobChangeListener = request.app.state.listener

    def accepts(row: dict[str, Any]) -> bool:
        # The caller's own tenant first: the listener sees every tenant's changes, a subscriber only its own.
        return (
            caller.sees_tenant(row["tenant_id"])
            and (tenant_id is None or row["tenant_id"] == tenant_id)
            and (job_id is None or row["id"] == job_id)
            and (not statuses or row["status"] in statuses)
        )

    try:
        subscription = listener.subscribe(accepts, caller.actor)
    except TooManySubscribers as exc:
        raise HTTPException(429, detail=str(exc), headers={"Retry-After": "30"}) from exc
    authenticator: Authenticator = request.app.state.authenticator

    async def stream() -> AsyncIterator[str]:
        try:
            yield ": subscribed\n\n"
            while True:
                try:
                    row = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    credential = request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
                    if not await authenticator.still_valid(*credential):
                        yield "event: ended\ndata: {}\n\n"  # logged out, revoked or expired: no more rows
                        return
                    yield ": heartbeat\n\n"  # keeps proxies from closing a quiet stream
                    continue
                yield f"event: job\ndata: {json.dumps(jsonable_encoder(row))}\n\n"
        finally:
            listener.unsubscribe(subscription)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
