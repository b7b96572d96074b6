"""``zixly bench big-job``: the job page and the sweep explorer of one big sweep, in a real browser, next to the same
pages of a small sweep.

A sweep of a million backtests (4 tickers x 250,000 SMA pairs, in chunks of 1,000) leaves 2,000+ events (each
chunk's results and the progress after it) and a million rows in ``trading_sweep_results``. The benchmark writes such
a sweep's events with the contracts (no backtest runs: the metrics are made up) and applies them with the projector
itself, into a database of its own that later runs reuse; a sweep of one chunk is the baseline. Headless Chromium
opens each page ``rounds`` times and waits for the job page's timeline chart, and for the explorer's heatmap, to be
drawn. The API's answer for the job is timed too: by default (both ends of the timeline) and with every event, which
is what it answered before.
"""

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
from playwright.async_api import BrowserContext, async_playwright
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from kernel.log_reader import LogRecord
from kernel.settings import Settings
from projections.postgres_store import PostgresProjectionStore
from projections.projector import Projector
from schemas.codec import encode
from schemas.events import (
    Event,
    JobCompleted,
    JobCompletedPayload,
    JobProgressed,
    JobProgressedPayload,
    JobRequested,
    JobRequestedPayload,
    JobStarted,
    JobStartedPayload,
    SweepPlanned,
    SweepPlannedPayload,
    SweepResultsRecorded,
    SweepResultsRecordedPayload,
    derived_event_id,
    follow_up,
)
from schemas.strategies import StrategyType
from schemas.sweeps import DataFingerprint, DataSource, SweepResultRow
from zixly.bench.dashboard_pages import CHROMIUM, CHROMIUM_ARGS, dashboard
from zixly.bench.logins import bench_admin, log_in, log_in_browser
from zixly.bench.stats import median, p95
from zixly.bench.system import kept_database
from zixly.stack.local import LocalStack

TENANT = "bench-big-job"
TICKERS = ("SYNA", "SYNB", "SYNC", "SYND")
CHUNK = 1_000
TOPIC = "bench.big-job"


@dataclass(frozen=True)
class Sweep:
    """A sweep of ``fast x slow`` SMA pairs on each ticker."""

    name: str
    fast: int
    slow: int

    @property
    def backtests(self) -> int:
        return len(TICKERS) * self.fast * self.slow

    @property
    def job_id(self) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"zixly-bench-big-job/{self.name}/{self.fast}x{self.slow}")

    def parameters(self) -> dict[str, object]:
        windows = {
            "fast": {"start": 2, "stop": 1 + self.fast, "step": 1},
            "slow": {"start": 210, "stop": 209 + self.slow, "step": 1},
        }
        return {
            "tickers": list(TICKERS),
            "data_source": "synthetic",
            "rank_by": "sharpe",
            "start": "2015-01-01",
            "end": "2024-12-31",
            "strategies": [{"type": "sma_crossover", "parameters": windows}],
        }


def _rows(sweep: Sweep, chunk: int) -> list[SweepResultRow]:
    per_ticker = sweep.fast * sweep.slow
    rows = []
    for index in range(chunk * CHUNK, min((chunk + 1) * CHUNK, sweep.backtests)):
        ticker, pair = divmod(index, per_ticker)
        fast, slow = 2 + pair // sweep.slow, 210 + pair % sweep.slow
        score = ((fast * 7919 + slow * 104729 + ticker * 31) % 2000) / 1000 - 1  # spread, repeatable
        rows.append(
            SweepResultRow.model_construct(
                ticker=TICKERS[ticker],
                strategy_type=StrategyType.SMA_CROSSOVER,
                parameters={"fast": fast, "slow": slow},
                score=score,
                metrics={
                    "sharpe": score,
                    "sortino": score * 1.2,
                    "calmar": score / 2,
                    "total_return": score / 3,
                    "cagr": score / 30,
                    "volatility": 0.2,
                    "max_drawdown": -0.1 - abs(score) / 10,
                    "win_rate": 0.5,
                    "trades": 12,
                    "exposure": 0.6,
                },
            )
        )
    return rows


def _events(sweep: Sweep) -> Iterator[list[Event]]:
    """The sweep's events in log order, a few chunks' worth at a time."""
    began = datetime.now(UTC) - timedelta(minutes=5)
    request = JobRequested(
        tenant_id=TENANT,
        job_id=sweep.job_id,
        correlation_id=f"bench-{sweep.name}",
        producer="bench",
        occurred_at=began,
        payload=JobRequestedPayload(job_type="trading.sweep", parameters=sweep.parameters()),
    )
    started = follow_up(request, JobStarted, producer="bench", payload=JobStartedPayload(attempt=1, host="bench"))
    chunks = -(-sweep.backtests // CHUNK)
    data = [
        DataFingerprint(
            ticker=ticker,
            source=DataSource.SYNTHETIC,
            sha256="0" * 64,
            bars=2_516,
            first=date(2015, 1, 2),
            last=date(2024, 12, 31),
            periods_per_year=252.0,
        )
        for ticker in TICKERS
    ]
    planned = follow_up(
        started,
        SweepPlanned,
        producer="bench",
        payload=SweepPlannedPayload(
            attempt=1, chunk_count=chunks, backtest_count=sweep.backtests, data=data, parameters=sweep.parameters()
        ),
    )
    batch: list[Event] = [request, started, planned]
    for chunk in range(chunks):
        recorded = follow_up(
            planned,
            SweepResultsRecorded,
            producer="bench",
            event_id=derived_event_id(sweep.job_id, f"results:{chunk}"),
            payload=SweepResultsRecordedPayload(
                chunk_index=chunk, chunk_count=chunks, rows=_rows(sweep, chunk), worker="bench", duration_ms=8.0
            ),
        )
        progress = follow_up(
            recorded,
            JobProgressed,
            producer="bench",
            payload=JobProgressedPayload(
                attempt=1, progress=(chunk + 1) / chunks, message=f"{chunk + 1}/{chunks} chunks"
            ),
        )
        batch += [recorded, progress]
        if len(batch) >= 40:
            yield batch
            batch = []
    best = [
        {
            "rank": 1,
            "strategy_type": "sma_crossover",
            "parameters": {"fast": 2, "slow": 210},
            "score": 0.999,
            "out_of_sample": None,
        }
    ]
    result = {
        "rank_by": "sharpe",
        "backtests": sweep.backtests,
        "chunks": chunks,
        "elapsed_seconds": 60.0,
        "tickers": [{"ticker": ticker, "best": best, "strategies": []} for ticker in TICKERS],
    }
    yield [
        *batch,
        follow_up(
            started,
            JobCompleted,
            producer="bench",
            payload=JobCompletedPayload(attempt=1, result=result, duration_ms=60_000.0),
        ),
    ]


def seed(settings: Settings, bench: Settings, sweeps: list[Sweep], console: Console) -> list[str]:
    """Creates the benchmark's database once, and projects each sweep into it unless it is there, complete; the
    names of the sweeps it projected."""
    kept_database(settings, bench)
    projected = []
    with psycopg.connect(bench.database, autocommit=True) as connection:
        connection.execute("INSERT INTO tenants (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (TENANT, TENANT))
        for sweep in sweeps:
            count = connection.execute(
                "SELECT count(*) FROM trading_sweep_results WHERE job_id = %s AND EXISTS "
                "(SELECT 1 FROM pipeline_jobs WHERE id = %s AND status = 'COMPLETED')",
                (sweep.job_id, sweep.job_id),
            ).fetchone()
            if count is not None and count[0] == sweep.backtests:
                continue
            asyncio.run(_project(bench, sweep, console))
            projected.append(sweep.name)
        connection.execute("VACUUM ANALYZE trading_sweep_results")
    return projected


async def _project(bench: Settings, sweep: Sweep, console: Console) -> None:
    store = PostgresProjectionStore(bench.database, "jobs")
    projector = Projector(store)
    offset = 0
    try:
        # Each sweep on a partition of its own, from its own offset 0: the projector's checkpoint is per partition.
        partition = 1 + sum(sweep.name.encode()) % 1000
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"projecting the {sweep.name} sweep", total=sweep.backtests)
            for events in _events(sweep):
                records = [LogRecord(TOPIC, partition, offset + i, encode(event)[1]) for i, event in enumerate(events)]
                offset += len(records)
                await projector.apply(records)
                progress.advance(task, sum(len(e.payload.rows) for e in events if isinstance(e, SweepResultsRecorded)))
    finally:
        await store.close()


@dataclass(frozen=True)
class Timings:
    job_page_ms: dict[str, list[float]]
    explorer_ms: dict[str, list[float]]
    api_ms: dict[str, list[float]]
    api_bytes: dict[str, int]


async def _drawn(context: BrowserContext, url: str, selector: str) -> float:
    """Milliseconds from navigating to ``url`` until ``selector`` (a drawn chart) is in the page."""
    page = await context.new_page()
    try:
        started = time.perf_counter()
        await page.goto(url, wait_until="commit")
        await page.wait_for_selector(selector, state="attached", timeout=60_000)
        return (time.perf_counter() - started) * 1000
    finally:
        await page.close()


async def _measure(bench: Settings, sweeps: list[Sweep], rounds: int) -> Timings:
    login = bench_admin(bench)
    timings = Timings({}, {}, {}, {})
    async with dashboard(bench) as url, async_playwright() as playwright:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            await log_in(client, *login)
            for sweep in sweeps:
                for label, query in (("both ends", ""), ("every event", "?events_edge=10000")):
                    times = []
                    for _ in range(rounds):
                        started = time.perf_counter()
                        answer = await client.get(f"/api/pipelines/jobs/{sweep.job_id}{query}")
                        times.append((time.perf_counter() - started) * 1000)
                        answer.raise_for_status()
                    timings.api_ms[f"{sweep.name}, {label}"] = times
                    timings.api_bytes[f"{sweep.name}, {label}"] = len(answer.content)
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            await log_in_browser(context, url, *login)
            for sweep in sweeps:
                timings.job_page_ms[sweep.name] = [
                    await _drawn(context, f"{url}/jobs/{sweep.job_id}", "#job-timeline .scatterlayer .trace")
                    for _ in range(rounds)
                ]
                timings.explorer_ms[sweep.name] = [
                    await _drawn(context, f"{url}/sweeps?job={sweep.job_id}", "#sweep-heatmap .heatmaplayer image")
                    for _ in range(rounds)
                ]
        finally:
            await browser.close()
    return timings


def run_big_job_benchmark(settings: Settings, console: Console, fast: int, slow: int, rounds: int) -> Timings:
    with console.status("starting the stack"):
        LocalStack(settings).up()
    big, small = Sweep("big", fast, slow), Sweep("small", 1, CHUNK // len(TICKERS))
    bench = settings.replaced(database_url=settings.database_named(f"zixly_bench_big_job_{fast}x{slow}"))
    projected = seed(settings, bench, [small, big], console)
    console.print(f"sweeps projected by this run: {', '.join(projected) or 'none (reused from an earlier run)'}")
    with console.status(f"timing the pages, {rounds} rounds each"):
        timings = asyncio.run(_measure(bench, [small, big], rounds))
    _report(console, big, small, timings)
    return timings


def _report(console: Console, big: Sweep, small: Sweep, timings: Timings) -> None:
    def cells(times: list[float]) -> tuple[str, str]:
        return f"{median(times):,.0f}", f"{p95(times):,.0f}"

    table = Table(
        title=f"One big sweep's pages in Chromium ({big.backtests:,} backtests) next to a small one's "
        f"({small.backtests:,}): navigation to chart drawn, ms"
    )
    for column in ("page", "small p50", "small p95", "big p50", "big p95", "big / small"):
        table.add_column(column, justify="left" if column == "page" else "right")
    for page, measured in (
        ("job page: timeline drawn", timings.job_page_ms),
        ("sweep explorer: heatmap drawn", timings.explorer_ms),
    ):
        ratio = median(measured["big"]) / median(measured["small"])
        table.add_row(page, *cells(measured["small"]), *cells(measured["big"]), f"{ratio:.1f}x")
    console.print(table)
    api = Table(title="GET /api/pipelines/jobs/{id}: ms and bytes")
    for column in ("answer", "p50 ms", "p95 ms", "bytes"):
        api.add_column(column, justify="left" if column == "answer" else "right")
    for name, times in timings.api_ms.items():
        api.add_row(name, *cells(times), f"{timings.api_bytes[name]:,}")
    console.print(api)
    console.print("target: < 1,000 ms for both pages of the big sweep")
