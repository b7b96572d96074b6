"""What the dashboard's pages show, read from the projections (and the artifacts in S3) with a synchronous engine.

Dash runs its callbacks in worker threads; the queries are the read-only API's own (``job_queries``), executed here
without an event loop, each in the viewer's tenant scope (row-level security). Aggregates that every screen of a
scope shares (the overview, the pipeline's health) are cached for a few seconds, so that ten open screens cost the
database what one does.
"""

import asyncio
import io
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import cachetools
import pyarrow.parquet as pq
from sqlalchemy import ColumnElement, Engine, func, select, text

from dashboard.job_queries import (
    SERVICE_METRICS,
    TIMELINE_EDGE,
    JobFilter,
    SortField,
    events_query,
    job_row_query,
    list_query,
    split_page,
    timeline,
    timeline_queries,
)
from kernel.database import TenantScope, make_engine, scoped_sync
from kernel.object_store import ObjectStore, tenant_prefix
from kernel.redaction import redact
from kernel.settings import Settings
from market_data.providers import MarketData
from read_model.projection_lag import ProjectionLag, projection_lag
from read_model.sweep_reruns import RerunReport, SweepInputs, read_inputs, rerun_report
from schemas.read_model import job_counts_hourly, pipeline_jobs, trading_sweep_results
from schemas.sweeps import SWEEP_JOB_TYPE, TradingSweepParameters

T = TypeVar("T")
# What the sweep explorer can colour its heatmap by: columns of trading_sweep_results.
SWEEP_METRICS = ("score", "sharpe", "sortino", "calmar", "total_return", "max_drawdown", "win_rate")
SHARED_SECONDS = 3.0  # how stale a shared aggregate may be: well under a human's refresh, far over a query's cost

_THROUGHPUT = text("""
SELECT date_bin(CAST(:bucket AS interval), created_at, CAST(:since AS timestamptz)) AS bucket,
       count(*) AS created,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status IN ('FAILED', 'DEAD_LETTERED')) AS failed
FROM pipeline_jobs WHERE created_at >= :since AND created_at < :until
GROUP BY 1 ORDER BY 1
""")
_BY_STATUS = text("""
SELECT status, count(*) AS jobs, count(*) FILTER (WHERE attempts > 1) AS retried
FROM pipeline_jobs WHERE created_at >= :since AND created_at < :until GROUP BY status
""")
_TOP_ERRORS = text("""
SELECT error_type, count(*) AS jobs, max(updated_at) AS last_seen
FROM pipeline_jobs
WHERE created_at >= :since AND created_at < :until AND status IN ('FAILED', 'DEAD_LETTERED', 'RETRYING')
GROUP BY error_type ORDER BY jobs DESC LIMIT 10
""")
# The same from the hourly rollups (whole hours): a month is a few thousand rows instead of a million.
_ROLLUP_BY_STATUS = text("""
SELECT status, sum(jobs)::bigint AS jobs, sum(retried)::bigint AS retried FROM job_counts_hourly
WHERE hour >= :since_hour AND hour < :until GROUP BY status
""")
_ROLLUP_THROUGHPUT = text("""
SELECT date_bin(CAST(:bucket AS interval), hour, :since_hour) AS bucket,
       sum(jobs)::bigint AS created,
       coalesce(sum(jobs) FILTER (WHERE status = 'COMPLETED'), 0)::bigint AS completed,
       coalesce(sum(jobs) FILTER (WHERE status IN ('FAILED', 'DEAD_LETTERED')), 0)::bigint AS failed
FROM job_counts_hourly WHERE hour >= :since_hour AND hour < :until
GROUP BY 1 ORDER BY 1
""")
_ROLLUP_BY_TYPE = text("""
SELECT job_type, sum(jobs)::bigint AS jobs,
       coalesce(sum(jobs) FILTER (WHERE status = 'COMPLETED'), 0)::bigint AS completed,
       coalesce(sum(jobs) FILTER (WHERE status IN ('FAILED', 'DEAD_LETTERED')), 0)::bigint AS failed,
       coalesce(sum(jobs) FILTER (WHERE status IN ('QUEUED', 'RUNNING', 'RETRYING')), 0)::bigint AS in_flight
FROM job_counts_hourly WHERE hour >= :since_hour AND hour < :until
GROUP BY job_type ORDER BY job_type
""")
_ROLLUP_TOP_ERRORS = text("""
SELECT nullif(error_type, '') AS error_type, sum(jobs)::bigint AS jobs, max(hour) + interval '1 hour' AS last_seen,
       true AS to_the_hour
FROM job_counts_hourly
WHERE hour >= :since_hour AND hour < :until
  AND status IN ('FAILED', 'DEAD_LETTERED', 'RETRYING')
GROUP BY 1 ORDER BY jobs DESC LIMIT 10
""")
_ROLLUP_DURATIONS = text("""
SELECT job_type, bucket, sum(jobs)::bigint AS jobs FROM job_durations_hourly
WHERE hour >= :since_hour AND hour < :until GROUP BY job_type, bucket
""")
_WORKERS = text("""
SELECT metrics->'worker'->>'host' AS host, metrics->'worker'->>'process_id' AS process_id,
       count(*) FILTER (WHERE status = 'RUNNING') AS running, count(*) AS started, max(started_at) AS last_started
FROM pipeline_jobs WHERE started_at >= now() - interval '15 minutes' AND metrics ? 'worker'
GROUP BY 1, 2 ORDER BY last_started DESC LIMIT 50
""")
_RECENT_ERRORS = text("""
SELECT id, tenant_id, job_type, status, error_type, error_message, updated_at FROM pipeline_jobs
WHERE status IN ('FAILED', 'DEAD_LETTERED', 'RETRYING') ORDER BY updated_at DESC LIMIT 15
""")
# Each tenant's own limits (null: the deployment's default) beside its jobs in flight now (ix_pipeline_jobs_in_flight).
_TENANT_LIMITS = text("""
SELECT t.id AS tenant_id, t.rate_per_second, t.rate_burst, t.max_in_flight, t.max_sweep_backtests,
       (SELECT count(*) FROM pipeline_jobs j
        WHERE j.tenant_id = t.id AND j.status IN ('QUEUED', 'RUNNING', 'RETRYING')) AS in_flight
FROM tenants t
ORDER BY in_flight DESC,
         num_nonnulls(t.rate_per_second, t.rate_burst, t.max_in_flight, t.max_sweep_backtests) > 0 DESC, t.id
LIMIT 100
""")


def histogram_percentile(buckets: dict[int, int], fraction: float) -> float | None:
    """The ``fraction`` percentile of durations counted in quarter-octave buckets (bucket b: 2^(b/4) to
    2^((b+1)/4) ms), as the geometric middle of the bucket it falls in: within 9 % of the exact value."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank, seen = fraction * total, 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return float(2 ** ((bucket + 0.5) / 4))
    return float(2 ** ((max(buckets) + 0.5) / 4))


@dataclass(frozen=True)
class Overview:
    since: datetime
    until: datetime
    by_status: list[dict[str, Any]]
    throughput: list[dict[str, Any]]
    by_type: list[dict[str, Any]]
    top_errors: list[dict[str, Any]]


@dataclass(frozen=True)
class Health:
    lag: ProjectionLag | None
    lag_error: str | None
    workers: list[dict[str, Any]]
    recent_errors: list[dict[str, Any]]
    tenant_limits: list[dict[str, Any]]


@dataclass(frozen=True)
class EquityCurve:
    dates: list[Any]
    equity: list[float]
    buy_and_hold: list[float] | None


class ArtifactRefused(Exception):
    """An object key outside the tenant's prefix: no link is made for it."""


# Per axis of the sweep explorer's heatmap. A million-backtest sweep of SMA pairs has 250,000 points per ticker: drawn
# one by one they took 7 s to reach the page; 100 x 100 bins show what the eye can tell apart.
HEATMAP_BINS = 100
# The best backtest in each bin of (x, y); an axis with few values keeps them (one bin each). ``metric`` is a column
# name from SWEEP_METRICS, never the caller's text.
_BEST_BY_BIN = """
WITH cells AS (
    SELECT (parameters ->> :x)::float8 AS x, (parameters ->> :y)::float8 AS y, {metric} AS value, parameters_key
    FROM trading_sweep_results
    WHERE job_id = :job_id AND ticker = :ticker AND strategy_type = :strategy_type AND fold = :fold
      AND {metric} IS NOT NULL
      AND parameters ? :x AND parameters ? :y
), extent AS (
    SELECT min(x) AS x0, max(x) AS x1, count(DISTINCT x) AS nx, min(y) AS y0, max(y) AS y1, count(DISTINCT y) AS ny
    FROM cells
), binned AS (
    SELECT CASE WHEN nx <= :bins THEN x
                ELSE x0 + least(floor((x - x0) * :bins / (x1 - x0)), :bins - 1) * (x1 - x0) / :bins END AS bx,
           CASE WHEN ny <= :bins THEN y
                ELSE y0 + least(floor((y - y0) * :bins / (y1 - y0)), :bins - 1) * (y1 - y0) / :bins END AS by,
           value, parameters_key
    FROM cells, extent
)
SELECT DISTINCT ON (bx, by) bx, by, value, parameters_key FROM binned ORDER BY bx, by, value DESC
"""


# Spearman's rank correlation of one metric over the cells two rankings have in common (the same parameters of the
# same ticker and strategy), ties sharing their mean rank. ``metric`` is a column name from SWEEP_METRICS.
_RANK_CORRELATION = """
WITH a AS (
    SELECT parameters_key, {metric} AS v FROM trading_sweep_results
    WHERE job_id = :a AND ticker = :ticker AND strategy_type = :strategy_type AND fold = :fold AND {metric} IS NOT NULL
), b AS (
    SELECT parameters_key, {metric} AS v FROM trading_sweep_results
    WHERE job_id = :b AND ticker = :ticker AND strategy_type = :strategy_type AND fold = :fold AND {metric} IS NOT NULL
), common AS (
    SELECT a.v AS av, b.v AS bv FROM a JOIN b USING (parameters_key)
), ranked AS (
    SELECT rank() OVER (ORDER BY av) + (count(*) OVER (PARTITION BY av) - 1) / 2.0 AS ra,
           rank() OVER (ORDER BY bv) + (count(*) OVER (PARTITION BY bv) - 1) / 2.0 AS rb
    FROM common
)
SELECT count(*) AS cells, corr(ra, rb) AS spearman FROM ranked
"""


@dataclass(frozen=True)
class RankCorrelation:
    cells: int
    """How many cells both rankings have (with the metric defined in both)."""
    spearman: float | None
    """Undefined with fewer than two cells, or when one side's values are all equal."""


def _edge(value: float) -> float | int:
    """A bin's lower edge as a person reads it: 210, not 210.00000000000003."""
    rounded = round(value, 6)
    return int(rounded) if rounded.is_integer() else rounded


def _one_grid(job_id: uuid.UUID, ticker: str, strategy_type: str, fold: int) -> list[ColumnElement[bool]]:
    """One ranking of one strategy's grid on one ticker: a walk-forward ranks it once per fold."""
    results = trading_sweep_results.c
    return [
        results.job_id == job_id,
        results.ticker == ticker,
        results.strategy_type == strategy_type,
        results.fold == fold,
    ]


def _check_tenants_object(job: dict[str, Any], key: str) -> None:
    # Some S3-compatible stores normalise "..": a key must stay below the prefix whatever the store does with it.
    if not key.startswith(tenant_prefix(job["tenant_id"])) or ".." in key.split("/"):
        raise ArtifactRefused(f"{key!r} is not an artifact of tenant {job['tenant_id']!r}")


class PageData:
    def __init__(self, settings: Settings, shared_seconds: float = SHARED_SECONDS) -> None:
        self._settings = settings
        self._engine: Engine = make_engine(settings, pool_size=4, service="dashboard")
        self._shared: cachetools.TTLCache[Any, Any] = cachetools.TTLCache(maxsize=64, ttl=shared_seconds)
        self._shared_lock = threading.Lock()
        self._store: ObjectStore | None = None
        self._market_data: MarketData | None = None

    def dispose(self) -> None:
        self._engine.dispose()

    def _cached(self, key: Any, compute: Callable[[], T]) -> T:
        with self._shared_lock:
            if key in self._shared:
                return self._shared[key]  # type: ignore[no-any-return]
        value = compute()
        with self._shared_lock:
            self._shared[key] = value
        return value

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def settings(self) -> Settings:
        return self._settings

    def _rows(self, scope: TenantScope, query: Any, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with scoped_sync(self._engine, scope) as connection:
            return [dict(row) for row in connection.execute(query, parameters or {}).mappings()]

    # -- jobs -------------------------------------------------------------------------------------------------------

    def jobs_page(
        self, scope: TenantScope, where: JobFilter, sort: SortField, descending: bool, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return split_page(self._rows(scope, list_query(scope, where, sort, descending, limit, cursor)), sort, limit)

    def job_types(self, scope: TenantScope) -> list[str]:
        def compute() -> list[str]:
            # Every job is counted in the rollups: a few thousand rows to look through, not a million.
            return [row["job_type"] for row in self._rows(scope, select(job_counts_hourly.c.job_type).distinct())]

        return sorted(self._cached(("job_types", scope), compute))

    def job_row(self, scope: TenantScope, job_id: uuid.UUID) -> dict[str, Any] | None:
        """The job's row without its timeline: what the sweep explorer reads on every change of a running sweep."""
        with scoped_sync(self._engine, scope) as connection:
            row = connection.execute(job_row_query(job_id, None)).mappings().first()
            return dict(row) if row is not None else None

    def sweep_inputs(self, scope: TenantScope, job_id: uuid.UUID) -> SweepInputs:
        """A sweep's inputs (request, prices, engine, settings) as its plan recorded them; NotASweep otherwise."""
        with scoped_sync(self._engine, scope) as connection:
            return read_inputs(connection, job_id)

    def sweep_rerun_report(self, scope: TenantScope, original: uuid.UUID, again: uuid.UUID) -> RerunReport:
        """How a re-run compares with its original: the inputs that changed, and the result rows that differ."""
        with scoped_sync(self._engine, scope) as connection:
            return rerun_report(connection, original, again)

    def job(self, scope: TenantScope, job_id: uuid.UUID) -> dict[str, Any] | None:
        """The job's row and its timeline (``job_queries.timeline``: a long one by both ends), with anything that
        looks like a credential redacted (jobs from before secret references could carry one)."""
        query = job_row_query(job_id, None)
        queries = timeline_queries(job_id, TIMELINE_EDGE)
        with scoped_sync(self._engine, scope) as connection:
            row = connection.execute(query).mappings().first()
            if row is None:
                return None
            kinds = [dict(kind) for kind in connection.execute(queries.kinds).mappings()]
            first = [dict(event) for event in connection.execute(queries.first).mappings()]
            last = [dict(event) for event in connection.execute(queries.last).mappings()]
        redacted: dict[str, Any] = redact(dict(row) | timeline(kinds, first, last))
        return redacted

    def job_history(self, scope: TenantScope, job_id: uuid.UUID, through: int) -> list[dict[str, Any]]:
        """The job's events in log order up to the one at index ``through`` (what time travel folds), redacted."""
        history: list[dict[str, Any]] = redact(self._rows(scope, events_query(job_id).limit(through + 1)))
        return history

    def artifact_url(self, job: dict[str, Any], key: str) -> str:
        """A presigned link to one of ``job``'s artifacts, only under the job's tenant's prefix (the job row was
        read in the caller's scope, so the caller sees that tenant)."""
        _check_tenants_object(job, key)
        return self._object_store().presigned_url(key)

    # -- overview and health ----------------------------------------------------------------------------------------

    def overview(
        self, scope: TenantScope, since: datetime, until: datetime, bucket: timedelta, rollups: bool = False
    ) -> Overview:
        """Jobs created in [since, until): exactly, from ``pipeline_jobs``, or with ``rollups`` from the hourly
        tables (whole hours, durations from their histograms), which stays as fast over a month as over a day."""
        # The first whole hour, computed here: as an expression, Postgres would evaluate it for every row.
        since_hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        window = {
            "since": since,
            "until": until,
            "bucket": f"{int(bucket.total_seconds())} seconds",
            "since_hour": since_hour,
        }

        def compute() -> Overview:
            with scoped_sync(self._engine, scope) as connection:

                def rows(query: Any) -> list[dict[str, Any]]:
                    return [dict(row) for row in connection.execute(query, window).mappings()]

                if not rollups:
                    return Overview(
                        since, until, rows(_BY_STATUS), rows(_THROUGHPUT), rows(SERVICE_METRICS), rows(_TOP_ERRORS)
                    )
                histograms: dict[str, dict[int, int]] = {}
                for row in rows(_ROLLUP_DURATIONS):
                    histograms.setdefault(row["job_type"], {})[row["bucket"]] = row["jobs"]
                by_type = [
                    row
                    | {
                        "p50_ms": histogram_percentile(histograms.get(row["job_type"], {}), 0.5),
                        "p95_ms": histogram_percentile(histograms.get(row["job_type"], {}), 0.95),
                    }
                    for row in rows(_ROLLUP_BY_TYPE)
                ]
                return Overview(
                    since, until, rows(_ROLLUP_BY_STATUS), rows(_ROLLUP_THROUGHPUT), by_type, rows(_ROLLUP_TOP_ERRORS)
                )

        # Rounded to the second so that screens opened together share one computation.
        key = ("overview", scope, since.replace(microsecond=0), until.replace(microsecond=0), bucket, rollups)
        return self._cached(key, compute)

    def health(self, scope: TenantScope) -> Health:
        def compute() -> Health:
            lag, lag_error = None, None
            try:
                lag = asyncio.run(projection_lag(self._settings, self._settings.service_database("dashboard")))
            except Exception as exc:  # the page still shows workers and errors when Kafka does not answer
                lag_error = repr(exc)[:300]
            return Health(
                lag,
                lag_error,
                self._rows(scope, _WORKERS),
                self._rows(scope, _RECENT_ERRORS),
                self._tenant_limits(scope),
            )

        return self._cached(("health", scope), compute)

    def _tenant_limits(self, scope: TenantScope) -> list[dict[str, Any]]:
        """Each tenant's limits in force: its own, else the deployment's (``default`` says which)."""
        settings = self._settings
        defaults = {
            "rate_per_second": settings.tenant_rate_per_second,
            "rate_burst": settings.tenant_rate_burst,
            "max_in_flight": settings.tenant_max_in_flight,
            "max_sweep_backtests": settings.sweep_max_backtests,
        }
        rows = []
        for row in self._rows(scope, _TENANT_LIMITS):
            limits = {
                name: (row[name], False) if row[name] is not None else (default, True)
                for name, default in defaults.items()
            }
            rows.append({"tenant_id": row["tenant_id"], "in_flight": row["in_flight"], "limits": limits})
        return rows

    # -- sweeps -----------------------------------------------------------------------------------------------------

    def sweeps(self, scope: TenantScope, limit: int = 100) -> list[dict[str, Any]]:
        query = (
            select(
                pipeline_jobs.c.id,
                pipeline_jobs.c.tenant_id,
                pipeline_jobs.c.status,
                pipeline_jobs.c.progress,
                pipeline_jobs.c.created_at,
            )
            .where(pipeline_jobs.c.job_type == SWEEP_JOB_TYPE)
            .order_by(pipeline_jobs.c.created_at.desc(), pipeline_jobs.c.id.desc())
            .limit(limit)
        )
        return self._rows(scope, query)

    def sweep_cells(
        self,
        scope: TenantScope,
        job_id: uuid.UUID,
        ticker: str,
        strategy_type: str,
        limit: int | None = None,
        fold: int = 0,
    ) -> list[dict[str, Any]]:
        """The backtests of one ticker and strategy of the sweep as far as it has run, best first (the first
        ``limit``)."""
        columns = [
            trading_sweep_results.c[name]
            for name in (
                "parameters",
                "score",
                "total_return",
                "sharpe",
                "sortino",
                "calmar",
                "max_drawdown",
                "win_rate",
                "trades",
                "parameters_key",
            )
        ]
        query = (
            select(*columns)
            .where(*_one_grid(job_id, ticker, strategy_type, fold))
            .order_by(trading_sweep_results.c.score.desc().nulls_last())
            .limit(limit)
        )
        return self._rows(scope, query)

    def sweep_cell_count(
        self, scope: TenantScope, job_id: uuid.UUID, ticker: str, strategy_type: str, fold: int = 0
    ) -> int:
        query = (
            select(func.count().label("count"))
            .select_from(trading_sweep_results)
            .where(*_one_grid(job_id, ticker, strategy_type, fold))
        )
        return int(self._rows(scope, query)[0]["count"])

    def sweep_rank_correlation(
        self,
        scope: TenantScope,
        job_id: uuid.UUID,
        other: uuid.UUID,
        ticker: str,
        strategy_type: str,
        metric: str,
        fold: int = 0,
    ) -> RankCorrelation:
        """How alike two sweeps rank the cells of one ticker and strategy by ``metric``, computed by Postgres over
        the cells they have in common."""
        if metric not in SWEEP_METRICS:
            raise ValueError(f"not a metric of a sweep's results: {metric!r}")
        parameters = {"a": job_id, "b": other, "ticker": ticker, "strategy_type": strategy_type, "fold": fold}
        [row] = self._rows(scope, text(_RANK_CORRELATION.format(metric=metric)), parameters)
        spearman = row["spearman"]
        return RankCorrelation(int(row["cells"]), float(spearman) if spearman is not None else None)

    def sweep_folds(self, scope: TenantScope, job_id: uuid.UUID, ticker: str) -> list[int]:
        """The walk-forward folds of one ticker with rankings recorded so far (an index scan of the key)."""
        results = trading_sweep_results.c
        query = (
            select(results.fold)
            .where(results.job_id == job_id, results.ticker == ticker)
            .distinct()
            .order_by(results.fold)
        )
        return [int(row["fold"]) for row in self._rows(scope, query)]

    def sweep_best_by_point(
        self,
        scope: TenantScope,
        job_id: uuid.UUID,
        ticker: str,
        strategy_type: str,
        x: str,
        y: str,
        metric: str,
        bins: int = HEATMAP_BINS,
        fold: int = 0,
    ) -> list[dict[str, Any]]:
        """The best ``metric`` at each (``x``, ``y``) of one ticker and strategy, over the other parameters, reduced
        by Postgres; an axis with more than ``bins`` values is cut into ``bins`` equal ranges, each named by its
        lower edge. Shaped as cells: parameters {x, y}, the metric, and the key of the best backtest there."""
        if metric not in SWEEP_METRICS:
            raise ValueError(f"not a metric of a sweep's results: {metric!r}")
        rows = self._rows(
            scope,
            text(_BEST_BY_BIN.format(metric=metric)),
            {
                "job_id": job_id,
                "ticker": ticker,
                "strategy_type": strategy_type,
                "fold": fold,
                "x": x,
                "y": y,
                "bins": bins,
            },
        )
        return [
            {
                "parameters": {x: _edge(row["bx"]), y: _edge(row["by"])},
                metric: row["value"],
                "parameters_key": row["parameters_key"],
            }
            for row in rows
        ]

    def equity_curve(self, job: dict[str, Any], key: str, ticker: str) -> EquityCurve:
        """A stored curve of one of ``job``'s best cells (``key`` taken from its result, never from the browser),
        beside buying and holding the same ticker over the same bars."""
        _check_tenants_object(job, key)
        job_parameters = job["parameters"]
        table = pq.read_table(io.BytesIO(self._object_store().get(key)))
        dates = table.column("date").to_pylist()
        equity = [float(value) for value in table.column("equity").to_pylist()]
        buy_and_hold = None
        try:
            sweep = TradingSweepParameters.model_validate(job_parameters)
            prices = self._market_data_of().load(sweep.data_source, ticker, sweep.start, sweep.end)
            if len(prices.close) == len(equity) and len(equity):
                first = float(prices.close[0])
                buy_and_hold = [equity[0] * float(close) / first for close in prices.close]
        except Exception:  # the curve alone is still worth showing when the prices are no longer at hand
            buy_and_hold = None
        return EquityCurve(dates, equity, buy_and_hold)

    def walk_forward_curve(self, job: dict[str, Any], key: str) -> EquityCurve:
        """A walk-forward's stitched out-of-sample curve (``key`` taken from the job's result, never from the
        browser), with buying and holding over the same test windows, as the worker stored them."""
        _check_tenants_object(job, key)
        table = pq.read_table(io.BytesIO(self._object_store().get(key)))
        return EquityCurve(
            table.column("date").to_pylist(),
            [float(value) for value in table.column("equity").to_pylist()],
            [float(value) for value in table.column("buy_and_hold").to_pylist()],
        )

    def _object_store(self) -> ObjectStore:
        if self._store is None:
            self._store = ObjectStore(self._settings)
        return self._store

    def _market_data_of(self) -> MarketData:
        if self._market_data is None:
            self._market_data = MarketData.from_settings(self._settings)
        return self._market_data
