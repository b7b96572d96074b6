"""``zixly bench sweep-e2e``: one sweep of a million backtests through the running system, webhook to COMPLETED.

It posts 4 synthetic tickers x fast SMA 2 to 201 x slow SMA 210 to 1,459 (1,000,000 pairs, ~2,500 bars each, 2015
to 2024) to ``/webhook/trading-sweep`` of a receiver, one worker and the projector, on a topic and a database of
their own and the stack's object store, and waits for the job's row to say COMPLETED. It reports the time from the
202 to that row, backtests/s, result rows/s into ``trading_sweep_results``, what the sweep stored in the object
store, and where the time went, from the job's own events: accepted to planned, planned to the first chunk's
results, the chunks (first to last results), and the last results to COMPLETED (out of sample, equity curves,
summary); with the chunks' own compute time summed, against the time they took; and the CPU each process used
from the post to the COMPLETED row (the worker apart from its process pool), per chunk, since on two cores the
processes share the machine that the chunks' compute needs.

The baseline, in the same run: the engine alone, in this process, on one ticker's grid of the same shape.
"""

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime

import httpx
import numpy as np
import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernel.object_store import ObjectStore, tenant_prefix
from kernel.settings import Settings
from market_data.synthetic import SyntheticProvider
from processors.backtest.engine import run_grid
from schemas.strategies import StrategyType
from zixly.bench.cpu import CpuMeter, CpuShares, command_contains, descendants_of, named, tree_of
from zixly.bench.sweep import CONFIG
from zixly.bench.system import system_under_test

TENANT = "bench-sweep-e2e"
TICKERS = ("SYNA", "SYNB", "SYNC", "SYND")
START, END = "2015-01-01", "2024-12-31"


def sweep_body(fast: int, slow: int) -> dict[str, object]:
    windows = {"fast": {"start": 2, "stop": 1 + fast, "step": 1}, "slow": {"start": 210, "stop": 209 + slow, "step": 1}}
    return {
        "tickers": list(TICKERS),
        "data_source": "synthetic",
        "start": START,
        "end": END,
        "rank_by": "sharpe",
        "strategies": [{"type": "sma_crossover", "parameters": windows}],
    }


@dataclass(frozen=True)
class SweepRun:
    backtests: int
    chunks: int
    seconds: float  # 202 to the COMPLETED row
    rows: int
    objects: int
    stored_bytes: int
    phases: dict[str, float]  # seconds, from the job's events
    chunk_compute_seconds: float  # the chunks' own duration_ms, summed
    cpu: CpuShares  # from the post to the COMPLETED row
    engine_per_second: float  # the baseline


def run_sweep_e2e_benchmark(settings: Settings, console: Console, fast: int, slow: int) -> SweepRun:
    body = sweep_body(fast, slow)
    with ExitStack() as stack:
        with console.status("starting the stack, the receiver, a worker and the projector"):
            system = stack.enter_context(system_under_test(settings, settings.home / "logs" / "bench"))
        url = system.url.replace("/webhook/generic-job", "/webhook/trading-sweep")
        worker = system.pids["worker-1"]
        meter = CpuMeter(
            {
                "receiver": tree_of(system.pids["receiver"]),
                "worker": lambda process: process.pid == worker,
                "worker's process pool": descendants_of(worker),
                "projector": tree_of(system.pids["projector"]),
                "broker": command_contains("kafka.Kafka"),
                "Postgres": named("postgres"),
                "object store": command_contains("gofakes3"),
                "benchmark": lambda process: process.pid == os.getpid(),
            }
        )
        with meter.measure() as cpu:
            posted = time.perf_counter()
            answer = httpx.post(url, json=body, headers={"X-Tenant-ID": TENANT}, timeout=120)
            if answer.status_code != 202:
                raise RuntimeError(f"the sweep was refused: {answer.status_code} {answer.text[:500]}")
            job_id = str(answer.json()["job_id"])
            seconds = _wait_for_completion(system.settings, job_id, posted, console)
        run = _measured(system.settings, job_id, seconds, fast, slow, cpu)
    _report(console, run)
    return run


def _wait_for_completion(settings: Settings, job_id: str, posted: float, console: Console) -> float:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with (
        psycopg.connect(settings.database, autocommit=True) as connection,
        Progress(*columns, console=console, transient=True) as progress,
    ):
        task = progress.add_task("the sweep, webhook to COMPLETED", total=1.0)
        while True:
            row = connection.execute("SELECT status, progress FROM pipeline_jobs WHERE id = %s", (job_id,)).fetchone()
            if row is not None:
                progress.update(task, completed=float(row[1]))
                if row[0] == "COMPLETED":
                    return time.perf_counter() - posted
                if row[0] in ("FAILED", "DEAD_LETTERED", "CANCELLED"):
                    raise RuntimeError(f"the sweep ended {row[0]}; see the worker's log under logs/bench")
            time.sleep(0.1)


def _measured(settings: Settings, job_id: str, seconds: float, fast: int, slow: int, cpu: CpuShares) -> SweepRun:
    with psycopg.connect(settings.database, autocommit=True) as connection:
        moments: dict[str, datetime] = dict(
            connection.execute(
                "SELECT event_type, min(occurred_at) FROM job_events WHERE job_id = %s GROUP BY event_type",
                (job_id,),
            ).fetchall()
        )
        [(last_results, chunks, compute_ms)] = connection.execute(
            "SELECT max(occurred_at), count(*), sum((payload ->> 'duration_ms')::float8) FROM job_events "
            "WHERE job_id = %s AND event_type = 'SweepResultsRecorded'",
            (job_id,),
        ).fetchall()
        [(backtests,)] = connection.execute(
            "SELECT (payload ->> 'backtest_count')::int FROM job_events WHERE job_id = %s AND event_type = "
            "'SweepPlanned'",
            (job_id,),
        ).fetchall()
        [(rows,)] = connection.execute(
            "SELECT count(*) FROM trading_sweep_results WHERE job_id = %s", (job_id,)
        ).fetchall()
    objects, stored = ObjectStore(settings).usage(f"{tenant_prefix(TENANT)}jobs/{job_id}/")

    def between(start: datetime, end: datetime) -> float:
        return (end - start).total_seconds()

    phases = {
        "accepted → planned": between(moments["JobRequested"], moments["SweepPlanned"]),
        "planned → first chunk's results": between(moments["SweepPlanned"], moments["SweepResultsRecorded"]),
        "chunks (first → last results)": between(moments["SweepResultsRecorded"], last_results),
        "last results → COMPLETED (out of sample, curves, summary)": between(last_results, moments["JobCompleted"]),
    }
    return SweepRun(
        backtests,
        chunks,
        seconds,
        rows,
        objects,
        stored,
        phases,
        compute_ms / 1000,
        cpu,
        _engine_per_second(fast, slow),
    )


def _engine_per_second(fast: int, slow: int) -> float:
    """Backtests/s of the engine alone on one ticker's grid (the first ticker's prices), median of three."""
    # The sweep's dates are the synthetic source's whole range, so its prices are the series as loaded.
    prices = SyntheticProvider().load(TICKERS[0])  # 2015 to 2024, as the sweep asks
    fast_windows, slow_windows = np.meshgrid(np.arange(2, 2 + fast), np.arange(210, 210 + slow), indexing="ij")
    grid = {"fast": fast_windows.ravel().astype(np.float64), "slow": slow_windows.ravel().astype(np.float64)}
    times = []
    for _ in range(3):
        started = time.perf_counter()
        run_grid(prices.close, StrategyType.SMA_CROSSOVER, grid, CONFIG)
        times.append(time.perf_counter() - started)
    return len(grid["fast"]) / sorted(times)[1]


def _report(console: Console, run: SweepRun) -> None:
    table = Table(
        title=f"One sweep of {run.backtests:,} backtests ({run.chunks:,} chunks), webhook to COMPLETED, one worker"
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    rate = run.backtests / run.seconds
    table.add_row("202 → COMPLETED row", f"{run.seconds:,.1f} s (target < 60 s)")
    table.add_row("backtests/s end to end", f"{rate:,.0f}")
    table.add_row("result rows in trading_sweep_results", f"{run.rows:,} ({run.rows / run.seconds:,.0f}/s)")
    table.add_row("stored in the object store", f"{run.objects:,} objects, {run.stored_bytes / 1e6:,.1f} MB")
    for phase, seconds in run.phases.items():
        table.add_row(phase, f"{seconds:,.1f} s")
    chunks = run.phases["chunks (first → last results)"]
    table.add_row(
        "the chunks' own compute, summed",
        f"{run.chunk_compute_seconds:,.1f} s"
        + (f" ({run.chunk_compute_seconds / chunks:.0%} of the chunks' time)" if chunks > 0 else ""),
    )
    table.add_row("baseline: the engine alone, one ticker's grid, this process", f"{run.engine_per_second:,.0f}/s")
    table.add_row("end to end / engine", f"{rate / run.engine_per_second:.2f}x")
    console.print(table)
    console.print(_cpu_table(run))


def _cpu_table(run: SweepRun) -> Table:
    table = Table(title=f"CPU from the post to the COMPLETED row, {os.cpu_count()} cores")
    for column in ("process", "cores busy", "CPU seconds", "ms a chunk"):
        table.add_column(column, justify="right")
    shares = sorted(
        ((name, cores) for name, cores in run.cpu.cores.items() if cores >= 0.005), key=lambda share: -share[1]
    )
    for name, cores in [*shares, ("all", sum(run.cpu.cores.values()))]:
        seconds = cores * run.seconds
        table.add_row(name, f"{cores:.2f}", f"{seconds:,.1f}", f"{seconds * 1000 / max(run.chunks, 1):,.1f}")
    return table
