"""The read-only API's queries over the projections: job lists by keyset (cursor) pagination, one job, results.

Keyset pagination keeps a page as cheap at row 900,000 as at row 0: the cursor is the last row's sort key, and the
next page starts strictly after it, on an index.
"""

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, literal_column, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import TenantScope, scoped
from schemas.events import ENVELOPE_FIELDS
from schemas.read_model import JOB_SEARCH_TEXT, job_events, pipeline_jobs, trading_sweep_results

SortField = Literal["created_at", "updated_at"]
LIST_COLUMNS = (
    "id",
    "tenant_id",
    "job_type",
    "status",
    "attempts",
    "progress",
    "progress_message",
    "error_type",
    "error_message",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
)


class BadCursor(ValueError):
    """A cursor this API did not hand out (or one for another sort)."""


@dataclass(frozen=True)
class JobFilter:
    statuses: Sequence[str] = ()
    job_type: str | None = None
    tenant_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None


def encode_cursor(sort: SortField, value: datetime, job_id: uuid.UUID) -> str:
    raw = json.dumps([sort, value.isoformat(), str(job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortField) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, job_id = json.loads(raw)
        if cursor_sort != sort:
            raise BadCursor(f"this cursor pages by {cursor_sort}, not {sort}")
        return datetime.fromisoformat(value), uuid.UUID(job_id)
    except BadCursor:
        raise
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("not a cursor from this API") from exc


def _filtered(query: Select[Any], where: JobFilter, scope: TenantScope) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = []
    if not scope.all_tenants:
        # Row-level security already keeps other tenants' rows out; saying so in the query lets the planner use
        # the tenant's index instead of walking every tenant's rows to find a small tenant's page.
        conditions.append(pipeline_jobs.c.tenant_id == (scope.tenant_id or ""))
    if where.statuses:
        conditions.append(pipeline_jobs.c.status.in_(list(where.statuses)))
    if where.job_type:
        conditions.append(pipeline_jobs.c.job_type == where.job_type)
    if where.tenant_id:
        conditions.append(pipeline_jobs.c.tenant_id == where.tenant_id)
    if where.created_from:
        conditions.append(pipeline_jobs.c.created_at >= where.created_from)
    if where.created_to:
        conditions.append(pipeline_jobs.c.created_at < where.created_to)
    if where.text:
        escaped = where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        searched = literal_column(JOB_SEARCH_TEXT).ilike(pattern)
        try:  # a job id finds its job
            conditions.append(or_(searched, pipeline_jobs.c.id == uuid.UUID(where.text.strip())))
        except ValueError:
            conditions.append(searched)
    return query.where(and_(*conditions)) if conditions else query


def list_query(
    scope: TenantScope, where: JobFilter, sort: SortField, descending: bool, limit: int, cursor: str | None
) -> Select[Any]:
    """One row more than a page, so that the page knows whether another follows."""
    key = pipeline_jobs.c[sort]
    query = _filtered(select(*(pipeline_jobs.c[name] for name in LIST_COLUMNS)), where, scope)
    if cursor is not None:
        value, job_id = decode_cursor(cursor, sort)
        after = tuple_(key, pipeline_jobs.c.id)
        query = query.where(after < tuple_(value, job_id) if descending else after > tuple_(value, job_id))
    order = (key.desc(), pipeline_jobs.c.id.desc()) if descending else (key.asc(), pipeline_jobs.c.id.asc())
    return query.order_by(*order).limit(limit + 1)


async def list_jobs(
    engine: AsyncEngine,
    scope: TenantScope,
    where: JobFilter,
    sort: SortField,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of jobs and the cursor of the next page (None on the last)."""
    query = list_query(scope, where, sort, descending, limit, cursor)
    async with scoped(engine, scope) as connection:
        rows = [dict(row) for row in (await connection.execute(query)).mappings()]
    return split_page(rows, sort, limit)


def split_page(rows: list[dict[str, Any]], sort: SortField, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of ``list_query`` (one more than a page when another follows): the page, and the next one's cursor."""
    page = rows[:limit]
    return page, encode_cursor(sort, page[-1][sort], page[-1]["id"]) if len(rows) > limit and page else None


async def count_jobs(engine: AsyncEngine, scope: TenantScope, where: JobFilter) -> int:
    async with scoped(engine, scope) as connection:
        return int(
            (
                await connection.execute(_filtered(select(func.count()).select_from(pipeline_jobs), where, scope))
            ).scalar_one()
        )


# Enough of each event to show it and to fold it again (time travel).
TIMELINE_COLUMNS = [
    job_events.c[name]
    for name in (
        *ENVELOPE_FIELDS,
        "payload",
        "log_partition",
        "log_offset",
    )
]


# How many events a job's page and ``GET /api/pipelines/jobs/{id}`` show from each end of a long timeline. A sweep
# of a million backtests has 2,000+ events: all of them made a 1.3 MB answer and a 4.8 s page.
TIMELINE_EDGE = 100


def job_row_query(job_id: uuid.UUID, tenant_id: str | None) -> Select[Any]:
    """The job's row (of ``tenant_id`` only, when given); its events come from ``events_query``."""
    query = select(pipeline_jobs).where(pipeline_jobs.c.id == job_id)
    if tenant_id is not None:
        query = query.where(pipeline_jobs.c.tenant_id == tenant_id)
    return query


def events_query(job_id: uuid.UUID, after_offset: int = -1) -> Select[Any]:
    """The job's events in log order (one partition: the job's id is the key), after ``after_offset``."""
    return (
        select(*TIMELINE_COLUMNS)
        .where(job_events.c.job_id == job_id, job_events.c.log_offset > after_offset)
        .order_by(job_events.c.log_offset)
    )


@dataclass(frozen=True)
class TimelineQueries:
    """What a timeline shows of a job with many events: each type's count and span, and the events at both ends."""

    kinds: Select[Any]
    first: Select[Any]
    last: Select[Any]


def timeline_queries(job_id: uuid.UUID, edge: int) -> TimelineQueries:
    of_job = job_events.c.job_id == job_id
    kinds = (
        select(
            job_events.c.event_type,
            func.count().label("count"),
            func.min(job_events.c.occurred_at).label("first_at"),
            func.max(job_events.c.occurred_at).label("last_at"),
        )
        .where(of_job)
        .group_by(job_events.c.event_type)
        .order_by(func.min(job_events.c.log_offset))
    )
    first = select(*TIMELINE_COLUMNS).where(of_job).order_by(job_events.c.log_offset).limit(edge)
    last = select(*TIMELINE_COLUMNS).where(of_job).order_by(job_events.c.log_offset.desc()).limit(edge)
    return TimelineQueries(kinds, first, last)


def timeline(
    kinds: Sequence[dict[str, Any]], first: list[dict[str, Any]], last: list[dict[str, Any]]
) -> dict[str, Any]:
    """The timeline part of a job's answer from ``timeline_queries``: ``events`` (all of them, or the first and the
    last ``edge``), ``events_total``, ``events_omitted`` and ``event_types`` (count, first and last time)."""
    total = sum(int(kind["count"]) for kind in kinds)
    shown = {event["event_id"]: event for event in [*first, *reversed(last)]}  # overlapping ends count once
    events = sorted(shown.values(), key=lambda event: int(event["log_offset"]))
    return {
        "events": events,
        "events_total": total,
        "events_omitted": total - len(events),
        "event_types": [
            {
                "event_type": kind["event_type"],
                "count": int(kind["count"]),
                "first_at": kind["first_at"],
                "last_at": kind["last_at"],
            }
            for kind in kinds
        ],
    }


async def job_detail(
    engine: AsyncEngine, scope: TenantScope, job_id: uuid.UUID, tenant_id: str | None, edge: int = TIMELINE_EDGE
) -> dict[str, Any] | None:
    """The job's row and its timeline (``timeline``), with at most ``edge`` events from each end."""
    query = job_row_query(job_id, tenant_id)
    queries = timeline_queries(job_id, edge)
    async with scoped(engine, scope) as connection:
        row = (await connection.execute(query)).mappings().first()
        if row is None:
            return None
        kinds = [dict(kind) for kind in (await connection.execute(queries.kinds)).mappings()]
        first = [dict(event) for event in (await connection.execute(queries.first)).mappings()]
        last = [dict(event) for event in (await connection.execute(queries.last)).mappings()]
    return dict(row) | timeline(kinds, first, last)


async def job_row(engine: AsyncEngine, scope: TenantScope, job_id: uuid.UUID) -> dict[str, Any] | None:
    async with scoped(engine, scope) as connection:
        row = (await connection.execute(job_row_query(job_id, None))).mappings().first()
    return dict(row) if row is not None else None


async def job_events_page(
    engine: AsyncEngine, scope: TenantScope, job_id: uuid.UUID, after_offset: int, limit: int
) -> list[dict[str, Any]] | None:
    """Up to ``limit`` of the job's events after ``after_offset``; None when the scope sees no such job."""
    async with scoped(engine, scope) as connection:
        if (await connection.execute(select(pipeline_jobs.c.id).where(pipeline_jobs.c.id == job_id))).first() is None:
            return None
        rows = await connection.execute(events_query(job_id, after_offset).limit(limit))
        return [dict(event) for event in rows.mappings()]


RESULT_COLUMNS = (
    "ticker",
    "strategy_type",
    "parameters_key",
    "parameters",
    "score",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "win_rate",
    "trades",
    "exposure",
    "fold",  # which walk-forward fold's training window ranked the row; 0 without a walk-forward
)


@dataclass(frozen=True)
class ResultsFilter:
    """Which of a sweep's results to read: all of them unless narrowed to a ticker, a strategy or a fold."""

    ticker: str | None = None
    strategy_type: str | None = None
    fold: int | None = None

    def conditions(self, job_id: uuid.UUID) -> list[ColumnElement[bool]]:
        results = trading_sweep_results.c
        wanted = [results.job_id == job_id]
        if self.ticker:
            wanted.append(results.ticker == self.ticker)
        if self.strategy_type:
            wanted.append(results.strategy_type == self.strategy_type)
        if self.fold is not None:
            wanted.append(results.fold == self.fold)
        return wanted


def results_query(job_id: uuid.UUID, narrowed: ResultsFilter) -> Select[Any]:
    query = select(*(trading_sweep_results.c[name] for name in RESULT_COLUMNS)).where(*narrowed.conditions(job_id))
    return query.order_by(
        trading_sweep_results.c.score.desc().nulls_last(),
        trading_sweep_results.c.ticker,
        trading_sweep_results.c.strategy_type,
        trading_sweep_results.c.fold,
        trading_sweep_results.c.parameters_key,
    )


async def sweep_results(
    engine: AsyncEngine, scope: TenantScope, job_id: uuid.UUID, narrowed: ResultsFilter, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The best ``limit`` results (by score) after ``offset``, and how many there are in all."""
    count = select(func.count()).select_from(trading_sweep_results).where(*narrowed.conditions(job_id))
    async with scoped(engine, scope) as connection:
        total = int((await connection.execute(count)).scalar_one())
        rows = await connection.execute(results_query(job_id, narrowed).limit(limit).offset(offset))
        return [dict(row) for row in rows.mappings()], total


async def stream_results(
    engine: AsyncEngine, scope: TenantScope, job_id: uuid.UUID, narrowed: ResultsFilter
) -> AsyncIterator[dict[str, Any]]:
    """Every result of the job, best first, streamed from a server-side cursor."""
    async with scoped(engine, scope) as connection:
        rows = await connection.stream(results_query(job_id, narrowed).execution_options(yield_per=2000))
        async for row in rows.mappings():
            yield dict(row)


# Jobs by type created in a window: counts, success and duration percentiles (the API and the overview page).
SERVICE_METRICS = text("""
WITH window_jobs AS (
    SELECT job_type, status, (metrics->>'duration_ms')::float AS duration_ms, completed_at
    FROM pipeline_jobs WHERE created_at >= :since AND created_at < :until
)
SELECT job_type, count(*) AS jobs,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status IN ('FAILED', 'DEAD_LETTERED')) AS failed,
       count(*) FILTER (WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING')) AS in_flight,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
FROM window_jobs GROUP BY job_type ORDER BY job_type
""")
